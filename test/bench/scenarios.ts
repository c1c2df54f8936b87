import { createPlatform, MapPhysicalAddressTypeMdl, MapPhysicalAddressTypePfn } from 'viommu';
import type { Rate } from './workloads.js';

import { check, mapPages, mean, median, PAGE, RW, rig, sd, workloads } from './rig.js';

/** The measurements behind `npm run bench`; each builds its own platform and closes it. */

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
      // Each round moves 32 MiB (a millisecond or more), so that a browser's coarse timer is a small part of it.
      const perRound = Math.max(4, Math.floor(((quick ? 8 : 32) * 2 ** 20) / size));
      const rate = await r.platform.runInWorker<Rate>(workloads, 'copy', {
        device: r.fn.slot,
        sourceIova,
        destinationIova,
        sourcePa: source * PAGE,
        destinationPa: destination * PAGE,
        size,
        rounds: quick ? 7 : 31,
        perRound,
      });
      ratios[String(size)] = rate.ratio;
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
    return rate.ratio;
  } finally {
    await r.platform.close();
  }
}

export interface MapUnmapFigures {
  mapMean: number;
  mapSd: number;
  unmapMean: number;
  unmapSd: number;
  /** The median batch: what a map or unmap costs when no collection lands in the batch. */
  mapMedian: number;
  unmapMedian: number;
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
      figures[String(pages)] = {
        mapMean: mean(mapTimes),
        mapSd: sd(mapTimes),
        unmapMean: mean(unmapTimes),
        unmapSd: sd(unmapTimes),
        mapMedian: median(mapTimes),
        unmapMedian: median(unmapTimes),
      };
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
      rows.push({ workingSetPages: pages, throughputRatio: rate.ratio, iotlbHitRate: rate.iotlbHitRate });
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
