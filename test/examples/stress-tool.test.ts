import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

/** The viommu-stress command (examples/stress/cli.ts, shipped as the package's bin). */
const root = new URL('../../', import.meta.url);
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/stress/cli.ts', ...args], { cwd: root, timeout: 120_000, env: { ...process.env } });

t.test('all three device kinds on all workers, with churn and fault injection: no mismatch, every fault accounted for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'viommu-stress-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.json');
  const { stdout, stderr } = await run(['--seconds', '3', '--workers', '2', '--fault-rate', '0.05', '--json', file]);
  t.match(stdout, /result: every byte verified, every injected fault accounted for/);
  t.match(stderr, /progress /, 'plain progress lines when not on a terminal');
  const figures = JSON.parse(readFileSync(file, 'utf8'));
  t.equal(figures.mismatches, 0);
  t.equal(figures.unexpectedFailures, 0);
  t.ok(figures.faultsInjected > 0, `${figures.faultsInjected} faults injected`);
  t.equal(figures.faultsInjected, figures.faultsReported + figures.faultsDropped + figures.faultsCollapsed, 'injected = reported + dropped + collapsed');
  t.equal(figures.workers, 2);
  for (const kind of ['copy-engine', 'nvme', 'nic']) {
    t.ok(figures.kinds[kind].transfers > 0, `${kind} moved data`);
    t.ok(figures.kinds[kind].bytesPerSecond > 0 && figures.kinds[kind].transfersPerSecond > 0, `${kind} throughput reported`);
  }
  t.ok(figures.mappings > 0, 'buffers were mapped and unmapped around transfers (churn)');
  t.equal(figures.devices.length, 6);
});

t.test('bad options exit with status 2 and a message naming the option', async (t) => {
  for (const [args, message] of [
    [['--seconds', 'soon'], /--seconds must be a number/],
    [['--kinds', 'gpu'], /--kinds: unknown kind 'gpu'/],
    [['--fault-rate', '2'], /--fault-rate must be a number in 0\.\.1/],
    [['--min-bytes', '9000', '--max-bytes', '10'], /--min-bytes \(9000\) is larger than --max-bytes \(10\)/],
    [['--frobnicate'], /unknown option --frobnicate/],
    [['--seconds', 'ten'], /--seconds must be a number in 0\.1\.\.86400 \(got "ten"\)/],
    [['--workers', '1.5'], /--workers must be an integer in 1\.\.64 \(got "1\.5"\)/],
    [['--json', '--quiet'], /--json needs a value, and the next argument is an option/],
    [['--quiet=yes'], /--quiet takes no value/],
    [['3'], /unexpected argument 3/],
    [['--restore-at', '2'], /--restore-at must be a number in 0\.\.1 \(got "2"\)/],
    [['--kill-every', 'often'], /--kill-every must be a number/],
    [['--sample-every', '0'], /--sample-every must be a number in 0\.05\.\.3600/],
    [['--soak=yes'], /--soak takes no value/],
  ] as const) {
    const error = await run([...args]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    t.equal(error?.code, 2, args.join(' '));
    t.match(error?.stderr ?? '', message);
  }
  const { stdout } = await run(['--help']);
  t.match(stdout, /usage: viommu-stress \[options\]/);
  t.match(stdout, /--version +print viommu's version/);
});

t.test('--name=value works as --name value does, and --version prints the package version', async (t) => {
  const { stdout } = await run(['--seconds=1', '--workers=1', '--kinds=copy-engine', '--devices=1', '--quiet']);
  t.match(stdout, /result: every byte verified/);
  const version = await run(['--version']);
  t.equal(version.stdout.trim(), `viommu ${JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).version}`);
});

t.test('a soak kills workers, saves and restores the platform mid-run, and writes its figures and chart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'viommu-soak-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'soak.json');
  const { stdout } = await run([
    '--seconds',
    '8',
    '--workers',
    '2',
    '--devices',
    '1',
    '--kill-every',
    '1',
    '--restore-at',
    '0.5',
    '--sample-every',
    '0.1',
    '--json',
    file,
  ]).catch((e: { stdout: string }) => e);
  t.match(stdout, /soak: \d+ worker\(s\) killed, 1 save\/restore\(s\) \(restored state identical\)/);
  const figures = JSON.parse(readFileSync(file, 'utf8'));
  t.equal(figures.mismatches, 0);
  t.equal(figures.unexpectedFailures, 0);
  // Kills are skipped while one is in flight or the platform is being restored: on a loaded
  // machine few fit in 8 s, but each one must take.
  t.ok(figures.soak.workerKills >= 1, `${figures.soak.workerKills} workers killed`);
  t.equal(figures.soak.workerKillsFailed, 0);
  t.equal(figures.soak.restores, 1);
  t.equal(figures.soak.restoreMismatch, null);
  t.same(figures.soak.callbackErrors, []);
  t.type(figures.rssSlopeBytesPerMinute, 'number');
  t.type(figures.tablesSlopePerMinute, 'number');
  t.ok(figures.soak.samples.length > 20, 'RSS and page tables sampled');
  t.ok(
    figures.soak.samples.every((s: { tables: number }) => s.tables > 0),
    'page tables in use are sampled',
  );
  const svg = readFileSync(join(dir, 'soak.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /save \+ restore/);
  t.equal((svg.match(/<polyline/g) ?? []).length, 2, 'an RSS line and a page-table line');
});
