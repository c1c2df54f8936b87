import {
  createPlatform,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  STATUS_SUCCESS,
  describeStatus,
  type DMA_IOMMU_INTERFACE_V2,
  type DMA_IOMMU_INTERFACE_EX,
  type Out,
  type FAULT_INFORMATION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type Platform,
  type PciFunction,
} from 'viommu';
import type { Rate } from './workloads.js';

/** The measurements behind `npm run bench`; each builds its own platform and closes it. */

const PAGE = 4096;
/** The worker side, next to this file: .ts from the sources, .js in the bench bundle. */
const workloads = new URL(`./workloads.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;

function check(status: number, what: string): void {
  if (status !== STATUS_SUCCESS) throw new Error(`${what}: ${describeStatus(status)}`);
}

interface Rig {
  platform: Platform;
  V2: DMA_IOMMU_INTERFACE_V2;
  fn: PciFunction;
  device: IOMMU_DMA_DEVICE;
  domain: IOMMU_DMA_DOMAIN;
}

/** A platform with one device attached to a Translate domain without allocator (explicit addresses). */
async function rig(
  workers: number,
  memoryBytes = 256 * 1024 * 1024,
  allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null = null,
  deviceNumber = 1,
  existing?: Platform,
): Promise<Rig> {
  const platform = existing ?? (await createPlatform({ workers, memoryBytes }));
  const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
  check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
  const V2 = table.value!.V2;
  const fn = platform.bus.addFunction({ bus: 0, device: deviceNumber, function: 0 });
  const device: { value?: IOMMU_DMA_DEVICE } = {};
  const domain: { value?: IOMMU_DMA_DOMAIN } = {};
  check(V2.CreateDevice(fn, null, device), 'CreateDevice');
  check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, allocator, null, domain), 'CreateDomainEx');
  check(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  return { platform, V2, fn, device: device.value!, domain: domain.value! };
}

/** Maps each of `pfns` with its own 4 KiB mapping at consecutive logical pages from `iova`. */
function mapPages(r: Rig, iova: number, pfns: readonly number[]): void {
  const out: { value?: number } = {};
  pfns.forEach((pfn, i) => {
    const description = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [pfn], NumberOfPages: 1 } };
    check(r.V2.MapLogicalRangeEx(r.domain, RW, description, iova + i * PAGE, null, null, out), 'MapLogicalRangeEx');
  });
}

export async function dmaCopyRatio(sizes: number[], quick: boolean): Promise<Record<string, number>> {
  const r = await rig(1);
  try {
    const maxPages = Math.max(...sizes) / PAGE;
    const source = r.platform.memory.allocateContiguousPages(maxPages);
    const destination = r.platform.memory.allocateContiguousPages(maxPages);
    const sourceIova = 0x1000_0000;
    const destinationIova = 0x2000_0000;
    mapPages(
      r,
      sourceIova,
      Array.from({ length: maxPages }, (_, i) => source + i),
    );
    mapPages(
      r,
      destinationIova,
      Array.from({ length: maxPages }, (_, i) => destination + i),
    );
    const ratios: Record<string, number> = {};
    for (const size of sizes) {
      const perRound = Math.max(4, Math.floor(((quick ? 2 : 8) * 2 ** 20) / size));
      const rate = await r.platform.runInWorker<Rate>(workloads, 'copy', {
        device: r.fn.slot,
        sourceIova,
        destinationIova,
        sourcePa: source * PAGE,
        destinationPa: destination * PAGE,
        size,
        rounds: quick ? 6 : 20,
        perRound,
      });
      ratios[String(size)] = rate.iommu / rate.direct;
    }
    return ratios;
  } finally {
    await r.platform.close();
  }
}

export async function smallAccessRatio(quick: boolean): Promise<number> {
  const r = await rig(1);
  try {
    const ring = r.platform.memory.allocatePages(1)[0]!;
    for (let i = 0; i < 512; i++) r.platform.memory.writeU32(ring * PAGE + i * 8, (i * 2654435761) >>> 0);
    mapPages(r, 0x3000_0000, [ring]);
    const rate = await r.platform.runInWorker<Rate>(workloads, 'smallReads', {
      device: r.fn.slot,
      ringIova: 0x3000_0000,
      ringPa: ring * PAGE,
      descriptors: 256,
      rounds: quick ? 6 : 20,
      perRound: quick ? 500_000 : 2_000_000,
    });
    return rate.iommu / rate.direct;
  } finally {
    await r.platform.close();
  }
}

export interface MapUnmapFigures {
  mapMean: number;
  mapSd: number;
  unmapMean: number;
  unmapSd: number;
}

/** Per-operation map and unmap cost of N-page mappings (buddy allocator), as Linux's dma_map_benchmark reports. */
export async function mapUnmapNs(pageCounts: number[], quick: boolean): Promise<Record<string, MapUnmapFigures>> {
  // A small platform: hundreds of MiB of shared memory allocated and freed around it would
  // make V8 schedule collections (external memory pressure) in the middle of the loop.
  const r = await rig(0, 16 * 1024 * 1024, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } });
  try {
    const figures: Record<string, MapUnmapFigures> = {};
    for (const pages of pageCounts) {
      const pfns = r.platform.memory.allocatePages(pages);
      const mdl = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: r.platform.memory.mdl(pfns) } };
      // Batches of 64 maps, then their 64 unmaps (Linux's dma_map_benchmark keeps one mapping
      // in flight per thread; 64 is the deeper queue a driver with a ring would have).
      const batch = 64;
      const batches = quick ? 300 : 1500;
      const addresses = new Array<number>(batch);
      const out: { value?: number } = {};
      const mapTimes: number[] = [];
      const unmapTimes: number[] = [];
      for (let b = -50; b < batches; b++) {
        let t = process.hrtime.bigint();
        for (let i = 0; i < batch; i++) {
          r.V2.MapLogicalRangeEx(r.domain, RW, mdl, null, null, null, out);
          addresses[i] = out.value!;
        }
        const mapped = process.hrtime.bigint() - t;
        t = process.hrtime.bigint();
        for (let i = 0; i < batch; i++) r.V2.UnmapLogicalRange(r.domain, addresses[i]!, pages);
        const unmapped = process.hrtime.bigint() - t;
        if (b >= 0) {
          mapTimes.push(Number(mapped) / batch);
          unmapTimes.push(Number(unmapped) / batch);
        }
      }
      figures[String(pages)] = { mapMean: mean(mapTimes), mapSd: sd(mapTimes), unmapMean: mean(unmapTimes), unmapSd: sd(unmapTimes) };
      r.platform.memory.freePages(pfns);
    }
    return figures;
  } finally {
    await r.platform.close();
  }
}

/** Aggregate DMA copy throughput with 2 workers divided by 1 worker (4 KiB copies, each worker its own device). */
export async function workerScaling(quick: boolean): Promise<number> {
  const platform = await createPlatform({ workers: 2, memoryBytes: 64 * 1024 * 1024 });
  try {
    const rigs = [await rig(2, 0, null, 1, platform), await rig(2, 0, null, 2, platform)];
    const args = rigs.map((r, i) => {
      // Each worker's pages 64 KiB apart: buffers in neighbouring pages slow both cores down
      // (measured: raw copies by two threads within 8 KiB of each other scale 1.43x, 1.97x when apart).
      const first = platform.memory.allocateContiguousPages(2, 16);
      platform.memory.allocateContiguousPages(14);
      const pfns = [first, first + 1];
      mapPages(r, 0x4000_0000 + i * 0x10_0000, pfns);
      return {
        device: r.fn.slot,
        sourceIova: 0x4000_0000 + i * 0x10_0000,
        destinationIova: 0x4000_0000 + i * 0x10_0000 + PAGE,
        size: PAGE,
        milliseconds: quick ? 300 : 1000,
      };
    });
    const rate = (runs: Array<{ copies: number; seconds: number }>) => runs.reduce((sum, run) => sum + run.copies / run.seconds, 0);
    // Warm both workers, then one alone, then both at once.
    await Promise.all(args.map((a) => platform.runInWorker(workloads, 'copyFor', { ...a, milliseconds: 100 })));
    const one = rate([await platform.runInWorker(workloads, 'copyFor', args[0])]);
    const two = rate(await Promise.all(args.map((a) => platform.runInWorker<{ copies: number; seconds: number }>(workloads, 'copyFor', a))));
    return two / one;
  } finally {
    await platform.close();
  }
}

export interface FaultRate {
  faultsPerSecond: number;
  deliveredPerSecond: number;
  accountedFor: boolean;
}

/**
 * From a worker raising a fault to its FaultHandler running on the main thread: `count`
 * faults, 200 µs apart, each stamped with the time it was raised. Runs on a fresh, small
 * platform first thing in the benchmark, so that no earlier scenario's garbage is collected
 * during it.
 */
export async function faultLatency(quick: boolean): Promise<{ p50: number; p99: number }> {
  const r = await rig(1, 16 * 1024 * 1024);
  try {
    const base = 0x5000_0000;
    const count = quick ? 1000 : 3000;
    const buffer = new SharedArrayBuffer(count * 8);
    const times = new Float64Array(buffer);
    const latencies: number[] = [];
    check(
      r.V2.SetDeviceFaultReportingEx(r.device, r.fn.inputMappingId, true, {
        FaultHandler: (_: unknown, info: FAULT_INFORMATION) => {
          latencies.push(performance.timeOrigin + performance.now() - times[(info.Arm64!.FaultAddress - base) / PAGE]!);
        },
      }),
      'SetDeviceFaultReportingEx',
    );
    await r.platform.runInWorker(workloads, 'timedFaults', { device: r.fn.slot, address: base, count, gapMicroseconds: 200, times: buffer });
    await new Promise((resolve) => setTimeout(resolve, 50));
    latencies.sort((a, b) => a - b);
    return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
  } finally {
    await r.platform.close();
  }
}

/** A worker raising faults as fast as it can: faults per second, and whether every one was delivered or counted as dropped. */
export async function faultRate(quick: boolean): Promise<FaultRate> {
  const r = await rig(1);
  try {
    const base = 0x5000_0000;
    let delivered = 0;
    check(r.V2.SetDeviceFaultReportingEx(r.device, r.fn.inputMappingId, true, { FaultHandler: () => delivered++ }), 'SetDeviceFaultReportingEx');
    const storm = await r.platform.runInWorker<{ faults: number; seconds: number }>(workloads, 'faultStorm', {
      device: r.fn.slot,
      address: base,
      milliseconds: quick ? 300 : 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stats = r.platform.faultStats();
    return {
      faultsPerSecond: storm.faults / storm.seconds,
      deliveredPerSecond: delivered / storm.seconds,
      accountedFor:
        stats.raised === storm.faults && stats.raised === stats.delivered + stats.dropped + stats.suppressed + stats.pending && stats.delivered === delivered,
    };
  } finally {
    await r.platform.close();
  }
}

export interface FaultFloodFigures {
  /** Another device's DMA copy throughput while a third floods its fault handler, over the same without the flood. */
  otherDevicesRatio: number;
  /** From a fault of another device to its FaultHandler, during the flood (ms). */
  otherFaultP50Ms: number;
  otherFaultP99Ms: number;
  /** Faults the flooder raised per second, and how many reached its handler. */
  floodFaultsPerSecond: number;
  floodDeliveredPerSecond: number;
  /** raised = delivered + dropped + suppressed + pending held, and no fault of the other devices was lost. */
  accountedFor: boolean;
}

/**
 * One device floods faults (distinct addresses, its handler on) while another copies with DMA
 * and a third raises a fault every 200 µs: the copier's throughput against the same run
 * without the flood (rounds alternate, so that drift hits both), and the third device's
 * fault latency during the flood.
 */
export async function faultFlood(quick: boolean): Promise<FaultFloodFigures> {
  const platform = await createPlatform({ workers: 3, memoryBytes: 64 * 1024 * 1024 });
  try {
    const flooder = await rig(3, 0, null, 1, platform);
    const copier = await rig(3, 0, null, 2, platform);
    const faulter = await rig(3, 0, null, 3, platform);
    const pages = platform.memory.allocateContiguousPages(2, 16);
    mapPages(copier, 0x4000_0000, [pages, pages + 1]);
    let floodDelivered = 0;
    check(
      flooder.V2.SetDeviceFaultReportingEx(flooder.device, flooder.fn.inputMappingId, true, { FaultHandler: () => floodDelivered++ }),
      'SetDeviceFaultReportingEx',
    );
    const base = 0x5000_0000;
    const gap = 200;
    const milliseconds = quick ? 250 : 1000;
    const count = Math.floor((milliseconds * 1000) / gap);
    const times = new SharedArrayBuffer(count * 8);
    const stamps = new Float64Array(times);
    let latencies: number[] = [];
    let otherDelivered = 0;
    check(
      faulter.V2.SetDeviceFaultReportingEx(faulter.device, faulter.fn.inputMappingId, true, {
        FaultHandler: (_: unknown, info: FAULT_INFORMATION) => {
          otherDelivered++;
          latencies.push(performance.timeOrigin + performance.now() - stamps[(info.Arm64!.FaultAddress - base) / PAGE]!);
        },
      }),
      'SetDeviceFaultReportingEx',
    );
    const copyArgs = { device: copier.fn.slot, sourceIova: 0x4000_0000, destinationIova: 0x4000_0000 + PAGE, size: PAGE, milliseconds };
    const round = async () => {
      const [copies] = await Promise.all([
        platform.runInWorker<{ copies: number; seconds: number }>(workloads, 'copyFor', copyArgs),
        platform.runInWorker(workloads, 'timedFaults', { device: faulter.fn.slot, address: base, count, gapMicroseconds: gap, times }),
      ]);
      return copies.copies / copies.seconds;
    };
    // Warm up every path, then alternate quiet and flooded rounds.
    await round();
    let quiet = 0;
    let flooded = 0;
    let floodFaults = 0;
    let floodSeconds = 0;
    let floodLatencies: number[] = [];
    floodDelivered = 0;
    otherDelivered = 0;
    const rounds = quick ? 2 : 4;
    for (let i = 0; i < rounds; i++) {
      quiet += await round();
      const stop = new SharedArrayBuffer(4);
      const started = performance.now();
      const storm = platform.runInWorker<number>(workloads, 'floodUntil', { device: flooder.fn.slot, address: 0x6000_0000, repeat: false, stop });
      // The flood runs before and through the measured round.
      await new Promise((resolve) => setTimeout(resolve, 20));
      latencies = [];
      flooded += await round();
      floodLatencies = floodLatencies.concat(latencies);
      Atomics.store(new Int32Array(stop), 0, 1);
      floodFaults += await storm;
      floodSeconds += (performance.now() - started) / 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stats = platform.faultStats();
    floodLatencies.sort((a, b) => a - b);
    return {
      otherDevicesRatio: flooded / quiet,
      otherFaultP50Ms: percentile(floodLatencies, 0.5),
      otherFaultP99Ms: percentile(floodLatencies, 0.99),
      floodFaultsPerSecond: floodFaults / floodSeconds,
      floodDeliveredPerSecond: floodDelivered / floodSeconds,
      accountedFor: stats.raised === stats.delivered + stats.dropped + stats.suppressed + stats.pending && otherDelivered === rounds * 2 * count,
    };
  } finally {
    await platform.close();
  }
}

/** Random 256-byte reads over working sets from a quarter to eight times the IOTLB's 4 KiB capacity. */
export async function iotlbSweep(quick: boolean): Promise<Array<{ workingSetPages: number; throughputRatio: number; iotlbHitRate: number }>> {
  const capacity = 4096;
  const r = await rig(1, 128 * 1024 * 1024);
  try {
    const physical = r.platform.memory.allocatePages(4096);
    const rows: Array<{ workingSetPages: number; throughputRatio: number; iotlbHitRate: number }> = [];
    for (const factor of [0.25, 0.5, 1, 2, 4, 8]) {
      const pages = capacity * factor;
      const iova = 0x1_0000_0000 * (rows.length + 1);
      const pfns = Array.from({ length: pages }, (_, i) => physical[(i * 7919) % physical.length]!);
      mapPages(r, iova, pfns);
      const rate = await r.platform.runInWorker<Rate & { iotlbHitRate: number }>(workloads, 'sweep', {
        device: r.fn.slot,
        iovas: pfns.map((_, i) => iova + i * PAGE),
        pas: pfns.map((pfn) => pfn * PAGE),
        bytes: 256,
        rounds: quick ? 4 : 12,
        perRound: quick ? 100_000 : 300_000,
        seed: 42,
      });
      rows.push({ workingSetPages: pages, throughputRatio: rate.iommu / rate.direct, iotlbHitRate: rate.iotlbHitRate });
    }
    return rows;
  } finally {
    await r.platform.close();
  }
}

/** Page-table bytes per mapped 4 KiB page with 1,048,576 pages mapped (scattered frames: 4 KiB leaves). */
export async function bytesPerMappedPage(): Promise<number> {
  const r = await rig(0, 64 * 1024 * 1024);
  try {
    const before = r.platform.pageTablesInUse;
    const pfns = r.platform.memory.allocatePages(1024).filter((_, i) => i % 2 === 0);
    const description = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: pfns.length } };
    const out: { value?: number } = {};
    const total = 1_048_576;
    for (let page = 0; page < total; page += pfns.length)
      check(r.V2.MapLogicalRangeEx(r.domain, RW, description, 0x10_0000_0000 + page * PAGE, null, null, out), 'MapLogicalRangeEx');
    return ((r.platform.pageTablesInUse - before) * 2048) / total;
  } finally {
    await r.platform.close();
  }
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function sd(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length);
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
