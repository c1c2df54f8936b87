import type * as Viommu from 'viommu';
import { seededRandom } from '../../../examples/traffic/device-stats.js';

/**
 * A run of routine calls and DMAs that records what each returned, written against the
 * package's namespace so that the same code runs in Node (machine/index.ts) and in a page
 * (the browser bundle): test/browser/routines.test.ts runs both and compares, and checks the
 * figures themselves.
 */
export interface RoutineProbe {
  interface: { status: number; size: number; version: number; routines: string[]; version3: number };
  statuses: Record<string, number>;
  mapped: { iova: number; pages: number; ranges: Array<{ kind: string; pages: number }>; translation: { physicalAddress: number; access: number } | null };
  /** Bytes a worker read through the IOMMU, against what the CPU wrote there. */
  dmaRead: { ok: boolean; length: number; matches: boolean; head: number[] };
  /** Bytes a worker wrote through the IOMMU, as the CPU then reads them. */
  dmaWrite: { ok: boolean; landed: number[] };
  readOnlyWrite: { ok: boolean; faultType: number | null };
  afterUnmap: { ok: boolean; faultType: number | null; faultAddress: number | null; translation: unknown };
  faults: Array<{
    type: number;
    infoType: number;
    faultAddress: number;
    write: boolean;
    addressValid: boolean;
    inputMappingId: number;
    sameDomain: boolean;
    sameDevice: boolean;
    iommuBaseAddress: number;
  }>;
  faultStats: { raised: number; delivered: number; dropped: number; suppressed: number; pending: number };
  workers: { count: number; distinctIds: number };
}

const PAGE = 4096;

export async function routineProbe(viommu: typeof Viommu): Promise<RoutineProbe> {
  const platform = await viommu.createPlatform({ workers: 2, memoryBytes: 16 * 1024 * 1024, deviceMemoryBytes: 1024 * 1024, pageTableBytes: 1024 * 1024 });
  try {
    const table: Viommu.Out<Viommu.DMA_IOMMU_INTERFACE_EX> = {};
    const interfaceStatus = platform.IoGetIommuInterfaceEx(2, 0, table);
    const unsupported: Viommu.Out<Viommu.DMA_IOMMU_INTERFACE_EX> = {};
    const V2 = table.value!.V2;
    const statuses: Record<string, number> = {};

    const fn = platform.bus.addFunction({ bus: 0, device: 4, function: 0 });
    const device: Viommu.Out<Viommu.IOMMU_DMA_DEVICE> = {};
    const domain: Viommu.Out<Viommu.IOMMU_DMA_DOMAIN> = {};
    const other: Viommu.Out<Viommu.IOMMU_DMA_DOMAIN> = {};
    const buddy = { LogicalAllocatorType: viommu.IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 48 } };
    statuses.CreateDevice = V2.CreateDevice(fn, null, device);
    statuses.CreateDomainExBadType = V2.CreateDomainEx(viommu.DomainTypeMax, { AsUlonglong: 0 }, null, null, {});
    statuses.CreateDomainEx = V2.CreateDomainEx(viommu.DomainTypeTranslate, { AsUlonglong: 0 }, buddy, null, domain);
    statuses.CreateDomainExOther = V2.CreateDomainEx(viommu.DomainTypeTranslate, { AsUlonglong: 0 }, buddy, null, other);
    statuses.AttachDeviceEx = V2.AttachDeviceEx(domain.value!, device.value!);
    const types: Viommu.Out<number> = {};
    // It returns nothing, as in Windows.
    V2.QueryAvailableDomainTypes(device.value!, types);
    statuses.availableDomainTypes = types.value ?? -1;
    const faults: RoutineProbe['faults'] = [];
    statuses.SetDeviceFaultReportingEx = V2.SetDeviceFaultReportingEx(device.value!, fn.inputMappingId, true, {
      FaultHandler: (_context: unknown, info: Viommu.FAULT_INFORMATION) => {
        const arm = info.Arm64!;
        faults.push({
          type: arm.Type,
          infoType: info.Type,
          faultAddress: arm.FaultAddress,
          write: arm.Flags.WriteNotRead,
          addressValid: arm.Flags.FaultAddressValid,
          inputMappingId: arm.InputMappingId,
          sameDomain: arm.DomainHandle === domain.value!,
          sameDevice: arm.PhysicalDeviceObject === fn,
          iommuBaseAddress: arm.IommuBaseAddress,
        });
      },
    });

    // Three pages the CPU fills with seeded bytes, mapped read-write by MDL.
    const pfns = platform.memory.allocatePages(3);
    const random = seededRandom(0xb10c);
    const written = new Uint8Array(3 * PAGE).map(() => Math.floor(random() * 256));
    for (const [i, pfn] of pfns.entries()) platform.memory.write(pfn * PAGE, written.subarray(i * PAGE, (i + 1) * PAGE));
    const mdl = { MapType: viommu.MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } };
    const iova: Viommu.Out<number> = {};
    const RW = viommu.IOMMU_ACCESS_READ | viommu.IOMMU_ACCESS_WRITE;
    statuses.MapLogicalRangeExBadAccess = V2.MapLogicalRangeEx(domain.value!, 8, mdl, null, null, null, {});
    statuses.MapLogicalRangeEx = V2.MapLogicalRangeEx(domain.value!, RW, mdl, null, null, null, iova);
    const summary = platform.describeDomain(domain.value!)!;
    const view = platform.inspectTranslation(domain.value!, iova.value! + PAGE + 5);
    const mapped = {
      iova: iova.value!,
      pages: pfns.length,
      ranges: summary.ranges.map((range) => ({ kind: range.kind, pages: range.pages })),
      // Where the second page's byte 5 is, relative to that page's frame.
      translation: view !== undefined && 'physicalAddress' in view ? { physicalAddress: view.physicalAddress - pfns[1]! * PAGE, access: view.access } : null,
    };

    // A worker reads across the page boundaries through the IOMMU.
    const read = await platform.dma(fn, { address: iova.value! + 100, length: 3 * PAGE - 200 });
    const expected = written.subarray(100, 3 * PAGE - 100);
    const data = read.ok ? read.data! : new Uint8Array(0);
    const dmaRead = {
      ok: read.ok,
      length: data.length,
      matches: data.length === expected.length && data.every((b, i) => b === expected[i]),
      head: [...data.subarray(0, 8)],
    };

    // And writes across the first boundary.
    const write = await platform.dma(fn, { address: iova.value! + PAGE - 2, write: [0xca, 0xfe, 0xf0, 0x0d] });
    const landed = [...platform.memory.read(pfns[0]! * PAGE + PAGE - 2, 2), ...platform.memory.read(pfns[1]! * PAGE, 2)];

    // A read-only mapping in the other domain: a device write there is a permission fault.
    const readOnly: Viommu.Out<number> = {};
    statuses.DetachDeviceEx = V2.DetachDeviceEx(device.value!);
    statuses.AttachDeviceExOther = V2.AttachDeviceEx(other.value!, device.value!);
    statuses.MapReadOnly = V2.MapLogicalRangeEx(
      other.value!,
      viommu.IOMMU_ACCESS_READ,
      { MapType: viommu.MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl([pfns[2]!]) } },
      null,
      null,
      null,
      readOnly,
    );
    const denied = await platform.dma(fn, { address: readOnly.value!, write: [1] });
    statuses.DetachDeviceExOther = V2.DetachDeviceEx(device.value!);
    statuses.AttachDeviceExBack = V2.AttachDeviceEx(domain.value!, device.value!);

    // Unmapped: the next DMA faults, and the FaultHandler hears of it.
    statuses.UnmapLogicalRange = V2.UnmapLogicalRange(domain.value!, iova.value!, 3);
    statuses.UnmapLogicalRangeAgain = V2.UnmapLogicalRange(domain.value!, iova.value!, 3);
    const gone = await platform.dma(fn, { address: iova.value! + 8, length: 4 });
    const afterUnmap = {
      ok: gone.ok,
      faultType: gone.ok ? null : gone.faultType,
      faultAddress: gone.ok ? null : gone.faultAddress,
      translation: platform.inspectTranslation(domain.value!, iova.value!) ?? null,
    };
    statuses.DeleteDomainInUse = V2.DeleteDomain(domain.value!);
    statuses.DetachDeviceExLast = V2.DetachDeviceEx(device.value!);
    statuses.DeleteDomain = V2.DeleteDomain(domain.value!);
    statuses.DeleteDomainOther = V2.DeleteDomain(other.value!);
    statuses.DeleteDevice = V2.DeleteDevice(device.value!);

    // Both workers claim their slots as they start (a page loads its worker module first).
    for (let wait = 0; wait < 500 && platform.workerStats().length < 2; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
    const stats = platform.workerStats();
    return {
      interface: {
        status: interfaceStatus,
        size: table.value!.Size,
        version: table.value!.Version,
        routines: Object.keys(V2),
        version3: platform.IoGetIommuInterfaceEx(3, 0, unsupported),
      },
      statuses,
      mapped,
      dmaRead,
      dmaWrite: { ok: write.ok, landed },
      readOnlyWrite: { ok: denied.ok, faultType: denied.ok ? null : denied.faultType },
      afterUnmap,
      faults,
      faultStats: platform.faultStats(),
      workers: {
        count: stats.length,
        distinctIds: new Set(stats.map((s) => s.threadId)).size,
      },
    };
  } finally {
    await platform.close();
  }
}
