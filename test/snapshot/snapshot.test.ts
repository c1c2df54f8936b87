import t, { type Test } from 'tap';
import {
  DomainConfigurationArm64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  restorePlatform,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_SUCCESS,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type Platform,
  type RestoredPlatform,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_DMA_DOMAIN_TYPE,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type IOMMU_DMA_RESERVED_REGION,
} from '../../machine/index.js';
import { GuestPageTables } from '../helpers/arm64-tables.js';
import { buddy, contiguous, mdlOf, ok, out, PAGE, pfnArray, platformFor, randomBytes, rng, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/**
 * Platform.saveState / restorePlatform: a machine with every kind of IOMMU state (buddy and
 * explicit Translate domains, identity ranges, reserved regions, tokens with segments,
 * PassThrough, configured and unconfigured Unmanaged domains, attached and detached devices)
 * comes back translating every address the same, with the same ids, and goes on exactly as
 * the original would.
 */

interface Machine {
  platform: Platform;
  V2: DMA_IOMMU_INTERFACE_V2;
  domains: Record<'buddy' | 'explicit' | 'passThrough' | 'arm' | 'armIdle', IOMMU_DMA_DOMAIN>;
  devices: Record<'buddy' | 'passThrough' | 'arm' | 'idle', IOMMU_DMA_DEVICE>;
  token: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  /** Logical addresses worth comparing, per domain. */
  probes: Record<string, number[]>;
  /** Logical address of the scattered R/W mapping in the buddy domain, and the bytes behind it. */
  scattered: { iova: number; data: Uint8Array };
  armVa: number;
  armData: Uint8Array;
}

async function buildMachine(t: Test): Promise<Machine> {
  const platform = await platformFor(t, { workers: 0, memoryBytes: 16 * 1024 * 1024, pageTableBytes: 2048 * 256 });
  const V2 = v2Of(platform);
  const random = rng(77);
  const createDomain = (
    type: IOMMU_DMA_DOMAIN_TYPE,
    allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null,
    regions: IOMMU_DMA_RESERVED_REGION | null = null,
  ) => {
    const domain = out<IOMMU_DMA_DOMAIN>();
    ok(V2.CreateDomainEx(type, ZERO_FLAGS, allocator, regions, domain), 'CreateDomainEx');
    return domain.value!;
  };
  const createDevice = (device: number) => {
    const fn = platform.bus.addFunction({ bus: 0, device, function: 0 });
    const handle = out<IOMMU_DMA_DEVICE>();
    ok(V2.CreateDevice(fn, null, handle), 'CreateDevice');
    return handle.value!;
  };
  // A deleted domain first, so that ids have a gap.
  ok(V2.DeleteDomain(createDomain(DomainTypeTranslate, buddy(40))), 'DeleteDomain');

  const buddyDomain = createDomain(DomainTypeTranslate, buddy(39));
  const scatteredPfns = platform.memory.allocatePages(5).reverse();
  const data = randomBytes(random, 5 * PAGE);
  scatteredPfns.forEach((pfn, i) => {
    platform.memory.write(pfn * PAGE, data.subarray(i * PAGE, (i + 1) * PAGE));
  });
  const scattered = out<number>();
  ok(V2.MapLogicalRangeEx(buddyDomain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdlOf(platform, scatteredPfns), null, null, null, scattered), 'map scattered');
  // 2 MiB-aligned frames, so the mapping gets a large leaf; a partial unmap then splits it.
  const big = platform.memory.allocateContiguousPages(600, 512);
  const bigIova = out<number>();
  ok(V2.MapLogicalRangeEx(buddyDomain, IOMMU_ACCESS_READ, contiguous(big * PAGE, 600 * PAGE), null, null, null, bigIova), 'map big');
  ok(V2.UnmapLogicalRange(buddyDomain, bigIova.value! + 200 * PAGE, 100), 'partial unmap');
  const readOnly = out<number>();
  ok(V2.MapLogicalRangeEx(buddyDomain, IOMMU_ACCESS_READ, pfnArray(platform.memory.allocatePages(1)), null, null, null, readOnly), 'map one');
  // Single pages mapped and some unmapped again: freed blocks wait in the allocator's cache, in order.
  const singles = Array.from({ length: 6 }, () => {
    const iova = out<number>();
    ok(V2.MapLogicalRangeEx(buddyDomain, IOMMU_ACCESS_READ, pfnArray(platform.memory.allocatePages(1)), null, null, null, iova), 'map single');
    return iova.value!;
  });
  for (const i of [1, 4, 2]) ok(V2.UnmapLogicalRange(buddyDomain, singles[i]!, 1), 'unmap single');
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(buddyDomain, 16 * PAGE, null, null, null, token), 'reserve');
  const segment = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>();
  ok(V2.MapReservedLogicalRange(token.value!, 0, IOMMU_ACCESS_WRITE, pfnArray(platform.memory.allocatePages(2)), segment), 'segment 0');
  ok(V2.MapReservedLogicalRange(token.value!, 8 * PAGE, IOMMU_ACCESS_READ, pfnArray(platform.memory.allocatePages(3)), segment), 'segment 8');
  const buddyDevice = createDevice(1);
  ok(V2.AttachDeviceEx(buddyDomain, buddyDevice), 'attach buddy');
  ok(V2.SetDeviceFaultReportingEx(buddyDevice, platform.bus.find(0, 1, 0)!.inputMappingId, true, { FaultHandler: () => {} }), 'fault reporting');
  ok(
    V2.RegisterInterfaceStateChangeCallback(() => {}, null, buddyDevice, { AsULONG: 1 }),
    'state change',
  );

  // No allocator: reserved regions (one identity, one hole), identity ranges, explicit placement.
  const regions = {
    Base: 16 * PAGE,
    NumberOfPages: 16,
    ShouldMap: true,
    RegionNext: { Base: 64 * PAGE, NumberOfPages: 16, ShouldMap: false, RegionNext: null },
  };
  const explicitDomain = createDomain(DomainTypeTranslate, null, regions);
  ok(V2.MapIdentityRangeEx(explicitDomain, IOMMU_ACCESS_READ, contiguous(100 * PAGE, 10 * PAGE)), 'identity');
  ok(V2.MapLogicalRangeEx(explicitDomain, IOMMU_ACCESS_WRITE, pfnArray(platform.memory.allocatePages(3)), 0x4000_0000, null, null, out()), 'explicit');
  ok(V2.ReserveLogicalAddressRange(explicitDomain, 4 * PAGE, 0x8000_0000, null, null, out()), 'explicit token');

  const passThrough = createDomain(DomainTypePassThrough, null);
  const passThroughDevice = createDevice(2);
  ok(V2.AttachDeviceEx(passThrough, passThroughDevice), 'attach pass-through');

  const arm = createDomain(DomainTypeUnmanaged, null);
  const tables = new GuestPageTables(platform, 39);
  const armPage = platform.memory.allocatePages(1)[0]!;
  const armData = randomBytes(random, PAGE);
  platform.memory.write(armPage * PAGE, armData);
  const armVa = 0x12_3456_7000;
  tables.mapPage(armVa, armPage * PAGE);
  ok(V2.ConfigureDomain(arm, { Type: DomainConfigurationArm64, Arm64: { Ttbr0: tables.root, InputSize0: 39, TranslationEnabled: true } }), 'configure');
  const armDevice = createDevice(3);
  ok(V2.AttachDeviceEx(arm, armDevice), 'attach arm');
  const armIdle = createDomain(DomainTypeUnmanaged, null);
  const idleDevice = createDevice(4);
  // A function whose driver turned Bus Master Enable off: it stays off.
  platform.bus.find(0, 4, 0)!.setBusMaster(false);

  const span = (base: number, pages: number) => Array.from({ length: pages }, (_, i) => base + i * PAGE);
  return {
    platform,
    V2,
    domains: { buddy: buddyDomain, explicit: explicitDomain, passThrough, arm, armIdle },
    devices: { buddy: buddyDevice, passThrough: passThroughDevice, arm: armDevice, idle: idleDevice },
    token: token.value!,
    probes: {
      buddy: [
        ...span(scattered.value!, 6),
        ...span(bigIova.value!, 600).filter((_, i) => i % 7 === 0 || (i >= 198 && i <= 302)),
        readOnly.value!,
        ...span(token.value!.LogicalAddressBase, 16),
      ],
      explicit: [...span(0, 120), ...span(0x4000_0000, 4), ...span(0x8000_0000, 4)],
      passThrough: [0, 5 * PAGE + 3],
      arm: [armVa, armVa + PAGE, 0],
      armIdle: [armVa],
    },
    scattered: { iova: scattered.value!, data },
    armVa,
    armData,
  };
}

/** What a domain looks like from outside: its summary (without walk counts) and every probe's translation. */
function viewOf(platform: Platform, domain: IOMMU_DMA_DOMAIN, probes: readonly number[]) {
  const { walks: _walks, ...summary } = platform.describeDomain(domain)!;
  return { summary, translations: probes.map((address) => platform.inspectTranslation(domain, address)) };
}

async function restoredFrom(t: Test, machine: Machine): Promise<RestoredPlatform> {
  const restored = await restorePlatform(machine.platform.saveState(), { workers: 1 });
  t.teardown(() => restored.platform.close());
  return restored;
}

t.test('every domain translates every probed address as before, with the same handle ids', async (t) => {
  const machine = await buildMachine(t);
  const restored = await restoredFrom(t, machine);
  for (const [name, domain] of Object.entries(machine.domains)) {
    const again = restored.domains.get(domain.id);
    t.ok(again, `domain '${name}' (id ${domain.id}) is back`);
    t.equal(again!.id, domain.id);
    t.not(again, domain, 'as a new handle object');
    t.same(
      viewOf(restored.platform, again!, machine.probes[name]!),
      viewOf(machine.platform, domain, machine.probes[name]!),
      `domain '${name}' looks the same`,
    );
  }
  t.equal(restored.domains.size, 5, 'the deleted domain stays deleted');
  t.same(
    [...restored.devices.keys()],
    Object.values(machine.devices)
      .map((device) => device.id)
      .sort((a, b) => a - b),
  );
  t.equal(restored.platform.pageTablesInUse <= machine.platform.pageTablesInUse, true, 'no more page tables than the original held');
  t.same(restored.platform.policy, machine.platform.policy);
  t.same(
    restored.platform.bus.functions().map((fn) => [fn.bdf, [...fn.config.bytes]]),
    machine.platform.bus.functions().map((fn) => [fn.bdf, [...fn.config.bytes]]),
    'configuration spaces, BAR addresses included, are identical',
  );
});

t.test('devices on the restored platform read the same bytes through the IOMMU, from a worker', async (t) => {
  const machine = await buildMachine(t);
  const restored = await restoredFrom(t, machine);
  const { platform } = restored;
  const read = await platform.dma(platform.bus.find(0, 1, 0)!, { address: machine.scattered.iova, length: 5 * PAGE });
  t.same(read, { ok: true, data: machine.scattered.data }, 'scattered mapping, buddy domain');
  const arm = await platform.dma(platform.bus.find(0, 3, 0)!, { address: machine.armVa + 8, length: 64 });
  t.same(arm, { ok: true, data: machine.armData.subarray(8, 72) }, 'guest ARM64 tables, unmanaged domain');
  const blocked = await platform.dma(platform.bus.find(0, 4, 0)!, { address: 0, length: 4 });
  t.equal(blocked.ok === false && blocked.blocked, true, 'Bus Master Enable stayed off');
  const readOnly = await platform.dma(platform.bus.find(0, 1, 0)!, { address: machine.probes.buddy!.at(-17)!, write: [1] });
  t.equal(readOnly.ok, false, 'a read-only mapping still refuses writes');
});

t.test('the restored platform goes on exactly as the original would', async (t) => {
  const machine = await buildMachine(t);
  const restored = await restoredFrom(t, machine);
  const V2r = v2Of(restored.platform);
  const both = [
    { platform: machine.platform, V2: machine.V2, domain: machine.domains.buddy },
    { platform: restored.platform, V2: V2r, domain: restored.domains.get(machine.domains.buddy.id)! },
  ];
  const next = both.map(({ platform, V2, domain }) => {
    const pfns = platform.memory.allocatePages(4);
    const iova = out<number>();
    ok(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, pfnArray(pfns), null, null, null, iova), 'map after restore');
    const singles = [0, 1].map(() => {
      const single = out<number>();
      ok(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, pfnArray(pfns.slice(0, 1)), null, null, null, single), 'map single after restore');
      return single.value;
    });
    const created = out<IOMMU_DMA_DOMAIN>();
    ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(), null, created), 'create after restore');
    return { pfns, iova: iova.value, singles, domainId: created.value!.id };
  });
  t.same(next[1], next[0], 'same page frames, same logical addresses (freed blocks reused in the same order), same next domain id');
  // Unmapping everything gives the whole space back the same way (blocks and their orders were kept).
  const drained = both.map(({ platform, V2, domain }) => {
    for (const range of platform.describeDomain(domain)!.ranges.filter((r) => r.kind === 'logical')) {
      ok(V2.UnmapLogicalRange(domain, range.logicalAddress, range.pages), 'unmap');
    }
    return platform.describeDomain(domain)!.freeLogicalPages;
  });
  t.equal(drained[1], drained[0], 'the same free logical pages once all is unmapped');
});

t.test('tokens come back by domain; old handles are strangers to the restored platform', async (t) => {
  const machine = await buildMachine(t);
  const restored = await restoredFrom(t, machine);
  const V2r = v2Of(restored.platform);
  const tokens = restored.tokens.get(machine.domains.buddy.id)!;
  t.same(tokens, [machine.token], 'the token, as { LogicalAddressBase, Size }');
  t.equal(restored.tokens.get(machine.domains.explicit.id)!.length, 1);
  t.equal(
    V2r.UnmapReservedLogicalRange({ OwningToken: machine.token, Offset: 8 * PAGE, Size: 3 * PAGE }),
    STATUS_INVALID_PARAMETER,
    'the old token object is unknown',
  );
  t.equal(V2r.UnmapReservedLogicalRange({ OwningToken: tokens[0]!, Offset: 8 * PAGE, Size: 3 * PAGE }), STATUS_SUCCESS, 'the segment is there');
  t.equal(V2r.UnmapReservedLogicalRange({ OwningToken: tokens[0]!, Offset: 0, Size: 2 * PAGE }), STATUS_SUCCESS);
  t.equal(V2r.FreeReservedLogicalAddressRange(tokens[0]!), STATUS_SUCCESS, 'and the emptied token can go');
  t.equal(V2r.DeleteDomain(machine.domains.armIdle), STATUS_INVALID_PARAMETER_1, 'an old domain handle is unknown');
  t.equal(V2r.DeleteDomain(restored.domains.get(machine.domains.armIdle.id)!), STATUS_SUCCESS, 'its restored twin is not');
  const original = machine.platform.inspectTranslation(machine.domains.buddy, machine.token.LogicalAddressBase + 8 * PAGE);
  t.not((original as { physicalAddress?: number }).physicalAddress, undefined, 'the original platform was not touched');
});

t.test('callbacks cannot be saved: restore lists the devices whose callbacks must be registered again', async (t) => {
  const machine = await buildMachine(t);
  const restored = await restoredFrom(t, machine);
  t.same(restored.rebind, [
    { device: restored.devices.get(machine.devices.buddy.id), pdo: restored.platform.bus.find(0, 1, 0), faultReporting: true, stateChangeCallback: true },
  ]);
  t.equal(restored.rebind[0]!.pdo, restored.platform.bus.find(0, 1, 0), 'the PDO is the restored function itself');
  const V2r = v2Of(restored.platform);
  const device = restored.rebind[0]!.device;
  const fn = restored.platform.bus.find(0, 1, 0)!;
  t.equal(V2r.SetDeviceFaultReportingEx(device, fn.inputMappingId, true, { FaultHandler: () => {} }), STATUS_SUCCESS, 'fault reporting can be enabled again');
  t.equal(
    V2r.RegisterInterfaceStateChangeCallback(() => {}, null, device, { AsULONG: 1 }),
    STATUS_SUCCESS,
    'a callback can be registered again',
  );
});

t.test('without guest RAM in it, a snapshot restores over the RAM the emulator kept', async (t) => {
  const machine = await buildMachine(t);
  const full = machine.platform.saveState();
  const lean = machine.platform.saveState({ guestMemory: false });
  t.ok(lean.length < full.length, `the snapshot without RAM is smaller (${lean.length} < ${full.length} bytes)`);
  t.ok(full.length < 1024 * 1024, `zero pages are left out: ${full.length} bytes for 16 MiB of RAM`);
  const ram = new SharedArrayBuffer(machine.platform.memory.size);
  new Uint8Array(ram).set(machine.platform.memory.bytes);
  const restored = await restorePlatform(lean, { workers: 1, guestMemory: ram });
  t.teardown(() => restored.platform.close());
  t.equal(restored.platform.memory.buffer, ram, 'the emulator RAM is adopted as is');
  const read = await restored.platform.dma(restored.platform.bus.find(0, 1, 0)!, { address: machine.scattered.iova, length: 5 * PAGE });
  t.same(read, { ok: true, data: machine.scattered.data });
});
