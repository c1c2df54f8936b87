import t from 'tap';
import { restorePlatform } from '../../machine/index.js';
import { PAGE, platformFor } from '../helpers/fixture.js';

/** What saveState() hands out: a plain Uint8Array of its own, not a Node Buffer cut from msgpackr's pool. */
t.test('saveState() returns a plain Uint8Array that owns its memory, and the copy restores', async (t) => {
  const platform = await platformFor(t, { workers: 0, memoryBytes: 4 * 1024 * 1024 });
  const [pfn] = platform.memory.allocatePages(1);
  platform.memory.write(pfn! * PAGE, [0xde, 0xad, 0xbe, 0xef]);
  const first = platform.saveState();
  const second = platform.saveState({ guestMemory: false });
  for (const [what, bytes] of [
    ['with guest memory', first],
    ['without guest memory', second],
  ] as const) {
    t.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype, `${what}: a Uint8Array, not a Buffer`);
    t.equal(bytes.byteOffset, 0, `${what}: starts its buffer`);
    t.equal(bytes.buffer.byteLength, bytes.length, `${what}: the buffer holds the snapshot and nothing else`);
    t.type(bytes.buffer, ArrayBuffer, `${what}: an ArrayBuffer (transferable, not shared)`);
  }
  t.not(first.buffer, second.buffer, 'each snapshot has a buffer of its own');
  const copy = first.slice();
  platform.saveState();
  t.same(first, copy, 'a later saveState() leaves an earlier snapshot alone');

  const restored = await restorePlatform(first, { workers: 0 });
  t.teardown(() => restored.platform.close());
  t.same(Array.from(restored.platform.memory.read(pfn! * PAGE, 4)), [0xde, 0xad, 0xbe, 0xef], 'the plain bytes restore the machine');
});
