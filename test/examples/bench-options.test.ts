import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

/** The benchmark's command line (test/bench/run.ts): refused before anything is measured. */
const root = new URL('../../', import.meta.url);
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/bench/run.ts', ...args], { cwd: root, timeout: 60_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => error,
  );

t.test('bad benchmark options exit with status 2 and a message naming the option', async (t) => {
  for (const [args, message] of [
    [['--stress-seconds', 'ten'], /bench: --stress-seconds must be a number in 0\.5\.\.3600 \(got "ten"\)/],
    [['--json', '--quick'], /bench: --json needs a value, and the next argument is an option/],
    [['--quikc'], /bench: unknown option --quikc/],
    [['--quick=1'], /bench: --quick takes no value/],
    [['--browser=yes'], /bench: --browser takes no value/],
    [['--v86=yes'], /bench: --v86 takes no value/],
  ] as const) {
    const result = await run([...args]);
    t.equal(result.code, 2, args.join(' '));
    t.match(result.stderr, message);
  }
});
