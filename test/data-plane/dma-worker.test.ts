import t from 'tap';
import {
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypePfn,
  PermissionFault,
  STATUS_SUCCESS,
  TranslationFault,
  UnsupportedUpstreamTransaction,
} from '../../machine/index.js';
import { deviceInTranslateDomain, mdlOf, out, PAGE, platformFor, randomBytes, rng, v2Of } from '../helpers/fixture.js';

t.test('a device in a worker reads what the CPU wrote, through a non-identity logical mapping', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const random = rng(1);
  const pfns = platform.memory.allocatePages(4);
  const payload = randomBytes(random, 4 * PAGE);
  pfns.forEach((pfn, i) => {
    platform.memory.write(pfn * PAGE, payload.subarray(i * PAGE, (i + 1) * PAGE));
  });
  // Burn a logical block so the mapping cannot land on its own physical address by chance.
  const filler = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, platform.memory.allocatePages(8)), null, null, null, filler), STATUS_SUCCESS);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdlOf(platform, pfns), null, null, null, logical), STATUS_SUCCESS);
  t.not(logical.value, pfns[0]! * PAGE, 'logical address differs from the physical one');

  const read = await platform.dma(fn, { address: logical.value! + 100, length: 3 * PAGE });
  t.ok(read.ok);
  t.same(read.ok && read.data, payload.subarray(100, 100 + 3 * PAGE), 'bytes read by the device match, across page boundaries');

  t.equal(V2.UnmapLogicalRange(domain, logical.value!, 4), STATUS_SUCCESS);
  const after = await platform.dma(fn, { address: logical.value! + 100, length: 3 * PAGE });
  t.same(after, { ok: false, faultType: TranslationFault, faultAddress: logical.value! + 100, blocked: false });
});

t.test('a read-only mapping refuses a device write with PermissionFault; guest RAM is unchanged', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 2 });
  const [pfn] = platform.memory.allocatePages(1);
  const before = randomBytes(rng(2), PAGE);
  platform.memory.write(pfn! * PAGE, before);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, [pfn!]), null, null, null, logical), STATUS_SUCCESS);
  const result = await platform.dma(fn, { address: logical.value! + 8, write: new Uint8Array(64).fill(0xee) });
  t.same(result, { ok: false, faultType: PermissionFault, faultAddress: logical.value! + 8, blocked: false });
  t.same(platform.memory.read(pfn! * PAGE, PAGE), before, 'not one byte changed');
  const readBack = await platform.dma(fn, { address: logical.value!, length: 16 });
  t.same(readBack.ok && readBack.data, before.subarray(0, 16), 'reads are still allowed');
});

t.test('a write reaches guest RAM only inside the mapping (canaries around it)', async (t) => {
  const platform = await platformFor(t, { workers: 2 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 3 });
  const first = platform.memory.allocateContiguousPages(3);
  platform.memory.fill(first * PAGE, 3 * PAGE, 0xa5);
  const logical = out<number>();
  const middle = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [first + 1], NumberOfPages: 1 } };
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_WRITE, middle, null, null, null, logical), STATUS_SUCCESS);
  const data = randomBytes(rng(3), PAGE);
  t.same(await platform.dma(fn, { address: logical.value!, write: data }), { ok: true });
  t.same(platform.memory.read((first + 1) * PAGE, PAGE), data);
  t.ok(
    platform.memory.read(first * PAGE, PAGE).every((b) => b === 0xa5),
    'canary page before is intact',
  );
  t.ok(
    platform.memory.read((first + 2) * PAGE, PAGE).every((b) => b === 0xa5),
    'canary page after is intact',
  );
  const spill = await platform.dma(fn, { address: logical.value! + PAGE - 4, write: new Uint8Array(8) });
  t.same(
    spill,
    { ok: false, faultType: TranslationFault, faultAddress: logical.value! + PAGE, blocked: false },
    'a write running off the mapping faults at the first unmapped page',
  );
  t.same(platform.memory.read((first + 1) * PAGE, PAGE), data, 'and writes nothing, not even the mapped part');
});

t.test('DMA without a domain faults with UnsupportedUpstreamTransaction; with Bus Master Enable clear it is blocked', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, device, domain } = deviceInTranslateDomain(platform, V2, { device: 4 });
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, platform.memory.allocatePages(1)), null, null, null, logical), STATUS_SUCCESS);
  t.ok((await platform.dma(fn, { address: logical.value!, length: 8 })).ok);

  fn.setBusMaster(false);
  t.same(await platform.dma(fn, { address: logical.value!, length: 8 }), {
    ok: false,
    faultType: UnsupportedUpstreamTransaction,
    faultAddress: logical.value!,
    blocked: true,
  });
  fn.setBusMaster(true);
  t.ok((await platform.dma(fn, { address: logical.value!, length: 8 })).ok, 'allowed again once Bus Master Enable is set');

  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
  t.same(await platform.dma(fn, { address: logical.value!, length: 8 }), {
    ok: false,
    faultType: UnsupportedUpstreamTransaction,
    faultAddress: logical.value!,
    blocked: false,
  });
  t.equal(V2.AttachDeviceEx(domain, device), STATUS_SUCCESS);
  t.ok((await platform.dma(fn, { address: logical.value!, length: 8 })).ok, 'mappings stayed with the domain across detach and attach');
});

t.test('a function that is not behind the IOMMU reaches guest memory untranslated', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const fn = platform.bus.addFunction({ bus: 0, device: 5, function: 0, behindIommu: false });
  const [pfn] = platform.memory.allocatePages(1);
  platform.memory.write(pfn! * PAGE, [9, 8, 7]);
  t.same(await platform.dma(fn, { address: pfn! * PAGE, length: 3 }), { ok: true, data: new Uint8Array([9, 8, 7]) });
});

t.test('platform.dma rejects bad requests with errors that name the argument', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const fn = platform.bus.addFunction({ bus: 0, device: 6, function: 0 });
  await t.rejects(platform.dma({} as never, { address: 0, length: 1 }), /pdo is not a PCI function of this platform/);
  await t.rejects(platform.dma(fn, { address: -1, length: 1 }), /request\.address must be a non-negative safe integer/);
  await t.rejects(platform.dma(fn, { address: 0, length: 0 }), /request\.length must be an integer in 1\.\.2\^30/);
  await t.rejects(platform.dma(fn, { address: 0, write: 'x' as never }), /request\.write must be a Uint8Array/);
});
