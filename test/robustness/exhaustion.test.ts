import t from 'tap';
import {
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_SUCCESS,
  TranslationFault,
  type IOMMU_DMA_DOMAIN,
  type Platform,
} from '../../machine/index.js';
import { buddy, deviceInTranslateDomain, out, PAGE, pfnArray, platformFor, RW, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { type UntypedV2, untyped } from '../helpers/untyped.js';

/**
 * One test per resource that can run out: the refusal is a defined status or a named error,
 * nothing is half-done (the state after equals the state before), and once resources are
 * released the same call succeeds.
 */

const spinner = new URL('../fixtures/spin-reader.ts', import.meta.url);

function createDomain(V2: UntypedV2, type: number, allocator: object | null = null): { status: number; domain?: IOMMU_DMA_DOMAIN } {
  const o = out<IOMMU_DMA_DOMAIN>();
  const status: number = V2.CreateDomainEx(type, ZERO_FLAGS, allocator, null, o);
  return { status, domain: o.value };
}

/** What a refused call must leave alone. */
function state(platform: Platform, domains: readonly unknown[]): string {
  return JSON.stringify({
    domains: domains.map((d) => platform.describeDomain(d as never)),
    tables: platform.pageTablesInUse,
    free: platform.memory.freePageCount,
  });
}

t.test('page-table pool: mapping refuses with STATUS_INSUFFICIENT_RESOURCES, takes nothing, and works again once tables are freed', async (t) => {
  // 16 tables of 2 KiB. A no-allocator domain has 5 levels.
  const platform = await platformFor(t, { pageTableBytes: 16 * 2048 });
  const V2 = untyped(v2Of(platform));
  const { domain } = createDomain(V2, DomainTypeTranslate);
  const frames = platform.memory.allocatePages(1);
  // Each mapping 2^39 bytes apart needs its own chain of lower tables.
  const mapped: number[] = [];
  let status: number = STATUS_SUCCESS;
  for (let i = 0; status === STATUS_SUCCESS; i++) {
    const address = i * 2 ** 39;
    const before = state(platform, [domain]);
    const logical = out<number>();
    status = V2.MapLogicalRangeEx(domain, RW, pfnArray(frames), address, null, null, logical);
    if (status === STATUS_SUCCESS) mapped.push(address);
    else {
      t.equal(status, STATUS_INSUFFICIENT_RESOURCES, `mapping ${i} finds the pool empty`);
      t.equal(state(platform, [domain]), before, 'the refused map took no table and no logical space');
      t.equal(logical.value, undefined, 'the _Out_ stays untouched');
    }
  }
  // Root, then 4 tables for the first mapping and 3 for each next one (they share the level-1 table).
  t.equal(mapped.length, 4, '4 mappings fitted in 1 + 4 + 3 * 3 tables; the 5th needed 3 of the 2 left');
  // Release: unmapping keeps the tables (they belong to the domain); deleting the domain frees them.
  t.equal(V2.DeleteDomain(domain), STATUS_SUCCESS);
  const again = createDomain(V2, DomainTypeTranslate);
  t.equal(again.status, STATUS_SUCCESS, 'a domain fits again once the tables are back');
  t.equal(V2.MapLogicalRangeEx(again.domain, RW, pfnArray(frames), mapped.at(-1)!, null, null, out()), STATUS_SUCCESS, 'and the refused mapping now succeeds');
});

t.test('invalidation log: a worker lapped by the log never uses a dead translation, idle or busy', async (t) => {
  // A log of 2 records: a handful of unmaps laps any worker that did not look in between.
  const platform = await platformFor(t, { workers: 1, invalidationLogCapacity: 2 });
  const V2 = untyped(v2Of(platform));
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 1 }, null);
  const pages = platform.memory.allocatePages(16);
  platform.memory.write(pages[0]! * PAGE, [7, 7, 7, 7]);
  const map = (i: number, access = RW) =>
    t.equal(V2.MapLogicalRangeEx(domain, access, pfnArray([pages[i]!]), 0x10_0000 + i * PAGE, null, null, out()), STATUS_SUCCESS);
  const unmap = (i: number) => t.equal(V2.UnmapLogicalRange(domain, 0x10_0000 + i * PAGE, 1), STATUS_SUCCESS);
  map(0);
  t.same(await platform.dma(fn, { address: 0x10_0000, length: 4 }), { ok: true, data: new Uint8Array([7, 7, 7, 7]) }, 'the worker caches page 0');
  // Idle worker: page 0 unmapped, then ten more unmaps lap the log before the worker looks again.
  unmap(0);
  for (let i = 1; i <= 10; i++) {
    map(i);
    unmap(i);
  }
  t.match(
    await platform.dma(fn, { address: 0x10_0000, length: 4 }),
    { ok: false, faultType: TranslationFault },
    'the lapped worker does not use the dead translation',
  );
  // Busy worker: spinning on a cached read while the log laps it.
  map(11, IOMMU_ACCESS_READ);
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const spinning = platform.runInWorker<{ fault: number; gaveUp: boolean }>(spinner, 'spinUntilFault', {
    device: fn.slot,
    iova: 0x10_0000 + 11 * PAGE,
    flags: flags.buffer,
    milliseconds: 20_000,
  });
  while (Atomics.load(flags, 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  unmap(11);
  for (let i = 12; i <= 15; i++) {
    map(i);
    unmap(i);
  }
  const result = await spinning;
  t.same(result, { ...result, fault: TranslationFault, gaveUp: false }, 'the spinning worker noticed the unmap though the log lapped it');
  // Nothing to release: the log reuses its records; new mappings work at once.
  map(0);
  t.same(await platform.dma(fn, { address: 0x10_0000, length: 4 }), { ok: true, data: new Uint8Array([7, 7, 7, 7]) }, 'mapping again works');
});

t.test('fault ring: when full, faults are dropped and counted, never lost; the ring takes records again once drained', async (t) => {
  const platform = await platformFor(t, { workers: 1, faultRingCapacity: 4 });
  const V2 = untyped(v2Of(platform));
  const { fn, device } = deviceInTranslateDomain(platform, V2, { device: 1 });
  let delivered = 0;
  t.equal(V2.SetDeviceFaultReportingEx(device, fn.inputMappingId, true, { FaultHandler: () => delivered++ }), STATUS_SUCCESS);
  const requests = Array.from({ length: 2000 }, (_, i) => ({ address: 0x4000_0000 + i * PAGE, length: 4 }));
  await platform.dmaBatch(fn, requests);
  let stats = platform.faultStats();
  t.equal(stats.raised, 2000);
  t.ok(stats.dropped > 0, `${stats.dropped} dropped and counted`);
  t.equal(stats.delivered, delivered);
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
  const before = delivered;
  await platform.dma(fn, { address: 0x7000_0000, length: 4 });
  stats = platform.faultStats();
  t.equal(delivered, before + 1, 'a fault after the drain is delivered');
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
});

t.test('domains: maxDomains reached gives STATUS_INSUFFICIENT_RESOURCES; deleting one makes room', async (t) => {
  const platform = await platformFor(t, { maxDomains: 3 });
  const V2 = untyped(v2Of(platform));
  const domains = [0, 1, 2].map(() => createDomain(V2, DomainTypeTranslate, buddy()).domain!);
  const before = state(platform, domains);
  const refused = createDomain(V2, DomainTypeTranslate, buddy());
  t.equal(refused.status, STATUS_INSUFFICIENT_RESOURCES);
  t.equal(refused.domain, undefined);
  t.equal(state(platform, domains), before, 'no table taken');
  t.equal(V2.DeleteDomain(domains[1]), STATUS_SUCCESS);
  t.equal(createDomain(V2, DomainTypeTranslate, buddy()).status, STATUS_SUCCESS, 'room again');
});

t.test('ASIDs: the 257th unmanaged domain gives STATUS_INSUFFICIENT_RESOURCES; deleting one frees its ASID', async (t) => {
  const platform = await platformFor(t, { maxDomains: 300 });
  const V2 = untyped(v2Of(platform));
  const domains = Array.from({ length: 256 }, () => createDomain(V2, DomainTypeUnmanaged));
  t.ok(
    domains.every((d) => d.status === STATUS_SUCCESS),
    '256 unmanaged domains',
  );
  t.same(new Set(domains.map((d) => platform.describeDomain(d.domain as never)!.asid)).size, 256, 'each with its own ASID');
  const refused = createDomain(V2, DomainTypeUnmanaged);
  t.equal(refused.status, STATUS_INSUFFICIENT_RESOURCES);
  t.equal(refused.domain, undefined);
  t.equal(createDomain(V2, DomainTypeTranslate).status, STATUS_SUCCESS, 'a Translate domain needs no ASID');
  const freed = platform.describeDomain(domains[100]!.domain as never)!.asid;
  t.equal(V2.DeleteDomain(domains[100]!.domain), STATUS_SUCCESS);
  const again = createDomain(V2, DomainTypeUnmanaged);
  t.equal(again.status, STATUS_SUCCESS, 'an ASID is free again');
  t.equal(platform.describeDomain(again.domain as never)!.asid, freed, 'the one just released');
});

t.test('logical space: a small AddressWidth runs out with STATUS_INSUFFICIENT_RESOURCES, for maps and reservations; unmapping gives it back', async (t) => {
  const platform = await platformFor(t);
  const V2 = untyped(v2Of(platform));
  // AddressWidth 14: 4 logical pages, page 0 never handed out.
  const { domain } = createDomain(V2, DomainTypeTranslate, buddy(14));
  const frames = platform.memory.allocatePages(2);
  const first = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray(frames), null, null, null, first), STATUS_SUCCESS, 'two pages fit (pages 2..3)');
  const single = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray([frames[0]!]), null, null, null, single), STATUS_SUCCESS, 'one more (page 1)');
  const before = state(platform, [domain]);
  const refused = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray([frames[0]!]), null, null, null, refused), STATUS_INSUFFICIENT_RESOURCES);
  t.equal(V2.ReserveLogicalAddressRange(domain, PAGE, null, null, null, out()), STATUS_INSUFFICIENT_RESOURCES, 'a reservation too');
  t.equal(refused.value, undefined);
  t.equal(state(platform, [domain]), before, 'nothing taken');
  t.equal(V2.UnmapLogicalRange(domain, single.value, 1), STATUS_SUCCESS);
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray([frames[0]!]), null, null, null, refused), STATUS_SUCCESS, 'the same call succeeds once a page is back');
});

t.test('guest pages: allocatePages beyond the free pages is a RangeError, takes nothing, and succeeds once pages are freed', async (t) => {
  const platform = await platformFor(t, { memoryBytes: 64 * PAGE });
  const memory = platform.memory;
  const held = memory.allocatePages(memory.freePageCount - 2);
  t.throws(() => memory.allocatePages(3), { name: 'RangeError', message: /cannot allocate 3 guest page\(s\): 2 free/ });
  t.throws(() => memory.allocateContiguousPages(3), RangeError);
  t.equal(memory.freePageCount, 2, 'nothing taken');
  memory.freePages(held.slice(0, 1));
  t.equal(memory.allocatePages(3).length, 3, 'the same call succeeds');
});

t.test('PCI functions: a full bus refuses with a RangeError naming options.maxFunctions and stays as it was', async (t) => {
  const platform = await platformFor(t, { maxFunctions: 2 });
  platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  platform.bus.addFunction({ bus: 0, device: 2, function: 0 });
  t.throws(() => platform.bus.addFunction({ bus: 0, device: 3, function: 0 }), { name: 'RangeError', message: /options\.maxFunctions is 2/ });
  t.equal(platform.bus.functions().length, 2);
  t.equal(platform.bus.find(0, 3, 0), undefined, 'the refused function does not exist');
  // Functions are the machine's hardware: nothing removes them, so a larger bus is an option of the next platform.
  const bigger = await platformFor(t, { maxFunctions: 3 });
  for (let device = 1; device <= 3; device++) bigger.bus.addFunction({ bus: 0, device, function: 0 });
  t.equal(bigger.bus.functions().length, 3);
});

t.test('device memory: a function whose model needs more than the arena has left is refused by name, and the bus is unchanged', async (t) => {
  const platform = await platformFor(t, { deviceMemoryBytes: 1024 * 1024 });
  const before = platform.bus.functions().length;
  t.throws(() => platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 4 * 1024 * 1024 } }), {
    name: 'RangeError',
    message: /options\.deviceMemoryBytes/,
  });
  t.equal(platform.bus.functions().length, before);
  t.ok(platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 512 * 1024 } }), 'a smaller device fits');
});
