import { createPlatform, type DriverBase, type FaultStats, type Platform } from 'viommu';
import { CopyTraffic } from '../traffic/copy-traffic.js';
import { type DeviceStats, keepBusy, seededRandom, type TrafficOptions } from '../traffic/device-stats.js';
import { NetworkTraffic } from '../traffic/network-traffic.js';
import { StorageTraffic } from '../traffic/storage-traffic.js';
import type { DeviceKind, StressOptions } from './options.js';

/** One device's (or one wired pair's) verified traffic. */
export interface Traffic {
  readonly stats: DeviceStats | readonly DeviceStats[];
  /** The drivers doing the traffic (one, or two for a wired pair). */
  readonly drivers: readonly DriverBase[];
  one(): Promise<void>;
  stop(): Promise<void>;
}

export interface KindFigures {
  devices: number;
  transfers: number;
  bytes: number;
  transfersPerSecond: number;
  bytesPerSecond: number;
}

/** Every device's figures, wired pairs flattened. */
export function deviceStatsOf(traffic: readonly Traffic[]): DeviceStats[] {
  return traffic.flatMap((t) => (Array.isArray(t.stats) ? [...t.stats] : [t.stats as DeviceStats]));
}

export interface StressResult {
  seconds: number;
  workers: number;
  devices: DeviceStats[];
  kinds: Partial<Record<DeviceKind, KindFigures>>;
  mismatches: number;
  unexpectedFailures: number;
  faultsInjected: number;
  faultsReported: number;
  faultsDropped: number;
  /** Injected faults collapsed into an identical one still waiting (same device, address, type): counted, delivered once. */
  faultsCollapsed: number;
  faultStats: FaultStats;
  mappings: number;
  /** Every byte matched, nothing failed that was not injected, and every injected fault was reported or counted as dropped. */
  ok: boolean;
}

/** A snapshot for progress lines while the run goes on. */
export interface StressProgress {
  elapsed: number;
  seconds: number;
  transfers: number;
  bytes: number;
  mismatches: number;
  faultsInjected: number;
}

/**
 * Builds a platform with `devicesPerKind` devices of each kind (NICs in wired pairs), runs
 * verified traffic on all of them at once for `seconds`, tears everything down and reports.
 */
export async function runStress(options: StressOptions, onProgress?: (progress: StressProgress) => void): Promise<StressResult> {
  const platform = await createPlatform({ workers: options.workers, memoryBytes: 512 * 1024 * 1024, deviceMemoryBytes: 512 * 1024 * 1024 });
  try {
    const traffic = await startTraffic(platform, options);
    const devices = () => deviceStatsOf(traffic);
    const started = performance.now();
    const deadline = started + options.seconds * 1000;
    const ticker = setInterval(() => {
      const all = devices();
      onProgress?.({
        elapsed: (performance.now() - started) / 1000,
        seconds: options.seconds,
        transfers: sum(all, 'transfers'),
        bytes: sum(all, 'bytes'),
        mismatches: sum(all, 'mismatches'),
        faultsInjected: sum(all, 'faultsInjected'),
      });
    }, 250);
    try {
      await Promise.all(
        traffic.map((t) =>
          keepBusy(
            options.depth,
            () => performance.now() >= deadline,
            () => t.one(),
          ),
        ),
      );
    } finally {
      clearInterval(ticker);
    }
    const seconds = (performance.now() - started) / 1000;
    await platform.devicesIdle();
    const faultStats = platform.faultStats();
    for (const t of traffic) await t.stop();
    return summarize(devices(), seconds, platform.options.workers, faultStats);
  } finally {
    await platform.close();
  }
}

/** The figures of a run from every device's stats and the platform's fault counts. */
export function summarize(all: DeviceStats[], seconds: number, workers: number, faultStats: FaultStats): StressResult {
  const kinds: Partial<Record<DeviceKind, KindFigures>> = {};
  for (const device of all) {
    const figures = (kinds[device.kind as DeviceKind] ??= { devices: 0, transfers: 0, bytes: 0, transfersPerSecond: 0, bytesPerSecond: 0 });
    figures.devices++;
    figures.transfers += device.transfers;
    figures.bytes += device.bytes;
    figures.transfersPerSecond = figures.transfers / seconds;
    figures.bytesPerSecond = figures.bytes / seconds;
  }
  const result = {
    seconds,
    workers,
    devices: all,
    kinds,
    mismatches: sum(all, 'mismatches'),
    unexpectedFailures: sum(all, 'unexpectedFailures'),
    faultsInjected: sum(all, 'faultsInjected'),
    faultsReported: sum(all, 'faultsReported'),
    faultsDropped: faultStats.dropped,
    faultsCollapsed: faultStats.collapsed,
    faultStats,
    mappings: sum(all, 'mappings'),
    ok: false,
  };
  result.ok =
    result.mismatches === 0 &&
    result.unexpectedFailures === 0 &&
    sum(all, 'injectedFailures') === result.faultsInjected &&
    result.faultsInjected === result.faultsReported + result.faultsDropped + result.faultsCollapsed;
  return result;
}

/** Adds the devices (bus 1 copy engines, bus 2 NVMe, bus 3 NIC pairs), starts their drivers and traffic generators. */
export async function startTraffic(platform: Platform, options: StressOptions): Promise<Traffic[]> {
  const trafficOptions: TrafficOptions = {
    random: seededRandom(options.seed),
    minBytes: options.minBytes,
    maxBytes: options.maxBytes,
    churn: options.churn,
    faultRate: options.faultRate,
    depth: options.depth,
  };
  const traffic: Traffic[] = [];
  let bus = 1;
  for (const kind of options.kinds) {
    const count = kind === 'nic' ? Math.ceil(options.devicesPerKind / 2) : options.devicesPerKind;
    for (let i = 0; i < count; i++) {
      // A restored platform already has its functions: traffic resumes on them.
      const add = (device: number) => platform.bus.find(bus, device, 0) ?? platform.bus.addFunction({ bus, device, function: 0, model: kind });
      if (kind === 'copy-engine') traffic.push(new CopyTraffic(platform, add(i), trafficOptions).start());
      else if (kind === 'nvme') traffic.push(await new StorageTraffic(platform, add(i), trafficOptions).start());
      else traffic.push(await new NetworkTraffic(platform, add(2 * i), add(2 * i + 1), trafficOptions).start());
    }
    bus++;
  }
  return traffic;
}

function sum(
  devices: readonly DeviceStats[],
  key: 'transfers' | 'bytes' | 'mismatches' | 'faultsInjected' | 'injectedFailures' | 'unexpectedFailures' | 'faultsReported' | 'mappings',
): number {
  return devices.reduce((total, device) => total + device[key], 0);
}
