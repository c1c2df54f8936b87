import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * Nothing may outlive a platform: a child process that closes a platform in the middle of
 * traffic, or whose restorePlatform fails part-way, must exit by itself (a worker thread left
 * behind would keep it running until the timeout kills it).
 */
const root = new URL('../../', import.meta.url);
const child = (fixture: string) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', `test/fixtures/${fixture}`], { cwd: root, timeout: 60_000 }).then(
    ({ stdout }) => ({ code: 0, stdout, killed: false }),
    (error: { code: number; stdout: string; killed: boolean }) => ({ code: error.code, stdout: error.stdout, killed: error.killed }),
  );

t.test('platform.close() during DMA, device batches and a worker kill leaves no thread behind', async (t) => {
  const result = await child('close-during-traffic.ts');
  t.equal(result.killed, false, 'the process exited by itself');
  t.equal(result.code, 0);
  t.match(result.stdout, /closed with 401 operations in flight/);
});

t.test('a restorePlatform that fails after starting its workers leaves no thread behind', async (t) => {
  const result = await child('failed-restore.ts');
  t.equal(result.killed, false, 'the process exited by itself');
  t.equal(result.code, 0);
  t.match(result.stdout, /refused: not a usable viommu snapshot: functions\[0\]: unknown device model 'gpu'/);
});
