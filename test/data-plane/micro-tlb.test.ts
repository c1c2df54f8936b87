import t from 'tap';
import { IOMMU_ACCESS_READ, STATUS_SUCCESS, TranslationFault } from '../../machine/index.js';
import { deviceInTranslateDomain, mdlOf, out, platformFor, v2Of } from '../helpers/fixture.js';

const spinner = new URL('../fixtures/spin-reader.ts', import.meta.url);

t.test('a device spinning on a cached 4-byte read sees an unmap made by another thread', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 12 });
  const iova = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, platform.memory.allocatePages(1)), null, null, null, iova), STATUS_SUCCESS);
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const spinning = platform.runInWorker<{ reads: number; fault: number; gaveUp: boolean }>(spinner, 'spinUntilFault', {
    device: fn.slot,
    iova: iova.value,
    flags: flags.buffer,
    milliseconds: 20_000,
  });
  // Wait (without blocking this thread's event loop) until the worker has the page cached.
  while (Atomics.load(flags, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  t.equal(V2.UnmapLogicalRange(domain, iova.value!, 1), STATUS_SUCCESS);
  const result = await spinning;
  t.equal(result.gaveUp, false, 'the spinning device noticed the unmap');
  t.equal(result.fault, TranslationFault);
  t.ok(result.reads > 1, `${result.reads} reads went through the micro-TLB before the unmap`);
});
