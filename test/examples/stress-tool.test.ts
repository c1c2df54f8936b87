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
