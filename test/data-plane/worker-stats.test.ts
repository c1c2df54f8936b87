import t from 'tap';
import { IOMMU_ACCESS_READ, STATUS_SUCCESS, TranslationFault } from '../../machine/index.js';
import { deviceInTranslateDomain, mdlOf, out, PAGE, platformFor, v2Of } from '../helpers/fixture.js';

/**
 * platform.workerStats(): each worker publishes its IOTLB hits and misses into its worker slot
 * at the end of each task. One worker, so every lookup below is that worker's; eight pages
 * mapped one by one onto frames in reverse order, so that no two are a coalesced run and
 * each page is one IOTLB entry.
 */
t.test('workerStats reports each worker IOTLB hits and misses, as of its last task', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const pfns = platform.memory.allocatePages(8).reverse();
  const iovas: number[] = [];
  for (const [i, pfn] of pfns.entries()) {
    platform.memory.write(pfn * PAGE, [i + 1]);
    const iova = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, [pfn]), null, null, null, iova), STATUS_SUCCESS);
    iovas.push(iova.value!);
  }
  const readAll = () => platform.dmaBatch(fn, [...iovas.map((address) => ({ address, length: 16 }))]);

  const first = await readAll();
  t.same(
    first.map((result) => result.ok && result.data![0]),
    [1, 2, 3, 4, 5, 6, 7, 8],
    'the bytes of each page',
  );
  let [stats] = platform.workerStats();
  t.match(stats, { slot: 0, busy: false, iotlbHits: 0, iotlbMisses: 8 }, 'first touch of each page: a miss (and a walk) each');
  t.ok(stats!.threadId > 0, 'the worker thread id');
  t.equal(platform.describeDomain(domain)!.walks, 8, 'as many table walks as misses');

  await readAll();
  [stats] = platform.workerStats();
  t.match(stats, { slot: 0, iotlbHits: 8, iotlbMisses: 8 }, 'the same pages again: eight hits');

  t.equal(V2.UnmapLogicalRange(domain, iovas[3]!, 1), STATUS_SUCCESS);
  const [gone] = await platform.dmaBatch(fn, [{ address: iovas[3]!, length: 16 }]);
  t.match(gone, { ok: false, faultType: TranslationFault });
  [stats] = platform.workerStats();
  t.match(stats, { iotlbHits: 8, iotlbMisses: 9 }, 'the unmapped page was invalidated: a miss, then the fault');
  t.equal(platform.workerStats().length, 1, 'one worker, one record');
});

t.test('with several workers each has its own slot and figures; a platform without workers has none', async (t) => {
  const platform = await platformFor(t, { workers: 2 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const iovas: number[] = [];
  for (const pfn of platform.memory.allocatePages(8).reverse()) {
    const iova = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, [pfn]), null, null, null, iova), STATUS_SUCCESS);
    iovas.push(iova.value!);
  }
  // Enough DMAs in flight at once that both workers take some, each a batch over every page.
  const batch = iovas.map((address) => ({ address, length: 8 }));
  const results = await Promise.all(Array.from({ length: 32 }, () => platform.dmaBatch(fn, batch)));
  t.ok(results.flat().every((result) => result.ok));
  const stats = platform.workerStats();
  t.same(
    stats.map((s) => s.slot),
    [0, 1],
  );
  t.equal(new Set(stats.map((s) => s.threadId)).size, 2, 'two distinct thread ids');
  const misses = stats.reduce((sum, s) => sum + s.iotlbMisses, 0);
  t.equal(misses, platform.describeDomain(domain)!.walks, 'every miss was a table walk of this domain');
  // Pages in turn, never the same twice running: the port's micro-TLB never answers, so each DMA is one lookup.
  t.equal(
    stats.reduce((sum, s) => sum + s.iotlbHits + s.iotlbMisses, 0),
    32 * 8,
    'one IOTLB lookup per DMA, across the workers',
  );
  for (const s of stats) if (s.iotlbHits + s.iotlbMisses > 0) t.equal(s.iotlbMisses, 8, `worker ${s.slot} missed each page once, then hit`);

  const control = await platformFor(t, { workers: 0 });
  t.same(control.workerStats(), []);
});

t.test('a worker thread that dies frees its slot, and its successor takes it and counts from zero', async (t) => {
  const platform = await platformFor(t, { workers: 2, deviceModels: [new URL('../fixtures/exiting-model.ts', import.meta.url)], onDeviceError: () => {} });
  const waitFor = async (what: string, condition: () => boolean) => {
    for (let waited = 0; !condition(); waited += 10) {
      if (waited > 30_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await waitFor('both workers', () => platform.workerStats().length === 2);
  const before = platform.workerStats();
  // The exiting model DMAs where nothing is mapped, then ends its worker thread.
  const fn = platform.bus.addFunction({ bus: 0, device: 5, function: 0, model: 'exiting', behindIommu: false });
  fn.registers!.write32(0, 1);
  await platform.devicesIdle();
  t.same(platform.deviceBatches, { run: 1, failed: 1 });
  const ids = () => platform.workerStats().map((s) => s.threadId);
  await waitFor('a successor', () => ids().length === 2 && new Set([...before.map((s) => s.threadId), ...ids()]).size === 3);
  const after = platform.workerStats();
  const dead = before.find((b) => !after.some((a) => a.threadId === b.threadId))!;
  const successor = after.find((a) => !before.some((b) => b.threadId === a.threadId))!;
  t.equal(successor.slot, dead.slot, `the successor (thread ${successor.threadId}) took the dead worker's slot ${dead.slot}`);
  t.match(successor, { iotlbHits: 0, iotlbMisses: 0 });
  t.same(
    after.map((s) => s.slot),
    [0, 1],
  );
});
