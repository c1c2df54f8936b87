import type { FAULT_INFORMATION } from 'viommu';

/** What one device's traffic did, for summaries and the stress tool's JSON. */
export interface DeviceStats {
  kind: 'copy-engine' | 'nvme' | 'nic';
  bdf: string;
  /** Transfers completed and checked byte for byte. */
  transfers: number;
  bytes: number;
  /** Transfers whose data did not match what was sent (must stay 0). */
  mismatches: number;
  /** Transfers deliberately aimed at unmapped memory, and how many the device reported failed. */
  faultsInjected: number;
  injectedFailures: number;
  /** Transfers that failed without being injected (must stay 0). */
  unexpectedFailures: number;
  /** FAULT_INFORMATION records the driver's FaultHandler received. */
  faultsReported: number;
  /** The first few, kept for the summary. */
  sampleFaults: FAULT_INFORMATION[];
  /** Map and unmap calls made for per-transfer buffers. */
  mappings: number;
}

export function emptyStats(kind: DeviceStats['kind'], bdf: string): DeviceStats {
  return {
    kind,
    bdf,
    transfers: 0,
    bytes: 0,
    mismatches: 0,
    faultsInjected: 0,
    injectedFailures: 0,
    unexpectedFailures: 0,
    faultsReported: 0,
    sampleFaults: [],
    mappings: 0,
  };
}

/**
 * Brings a device's fault figures up to date from its driver's list of reported faults
 * (which only grows; lanes running concurrently never reset it).
 */
export function noteFaults(stats: DeviceStats, faults: readonly FAULT_INFORMATION[]): void {
  stats.faultsReported = faults.length;
  if (stats.sampleFaults.length < 3) stats.sampleFaults = faults.slice(0, 3);
}

/** Options every traffic generator shares. */
export interface TrafficOptions {
  /** Seeded PRNG in [0, 1). */
  random: () => number;
  minBytes: number;
  maxBytes: number;
  /** Map and unmap a fresh buffer for every transfer (true) or reuse mapped buffers (false). */
  churn: boolean;
  /** Probability that a transfer is aimed at unmapped memory (fault injection). */
  faultRate: number;
  /** Transfers in flight per device. */
  depth: number;
}

/** mulberry32: the examples' seeded PRNG. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBetween(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function fillRandom(random: () => number, bytes: Uint8Array): void {
  for (let i = 0; i < bytes.length; i += 4) {
    const word = Math.floor(random() * 4294967296);
    for (let b = 0; b < 4 && i + b < bytes.length; b++) bytes[i + b] = (word >>> (8 * b)) & 0xff;
  }
}

/** Runs `one()` with `depth` calls in flight until `until()` says stop. */
export async function keepBusy(depth: number, until: () => boolean, one: () => Promise<void>): Promise<void> {
  const lane = async () => {
    while (!until()) await one();
  };
  await Promise.all(Array.from({ length: depth }, lane));
}
