import { createPlatform, type FAULT_INFORMATION } from 'viommu';

import { check, mapPages, PAGE, percentile, rig, workloads } from './rig.js';

/** The benchmark's fault scenarios: latency to the FaultHandler, fault rate, and a flood's effect on other devices. */

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
