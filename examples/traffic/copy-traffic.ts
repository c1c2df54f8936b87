import { CopyEngineDriver, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, type MappedBuffer, type Platform, type PciFunction } from 'viommu';
import { type DeviceStats, emptyStats, fillRandom, noteFaults, randomBetween, type TrafficOptions } from './device-stats.js';

const PAGE = 4096;
/** An IOVA the driver never maps (its buddy allocator hands out low addresses first). */
export const UNMAPPED_IOVA = 0x7f00_0000_0000;

interface BufferPair {
  source: MappedBuffer;
  destination: MappedBuffer;
}

/**
 * Verified copy traffic on one copy engine: random data in, the same bytes out, canaries
 * around the destination intact; injected transfers read unmapped memory and must fail with
 * a DMA fault that the driver hears about, leaving the destination untouched.
 */
export class CopyTraffic {
  readonly stats: DeviceStats;
  readonly driver: CopyEngineDriver;
  readonly #platform: Platform;
  readonly #options: TrafficOptions;
  /** Mapped buffer pairs kept for reuse when churn is off. */
  readonly #pool: BufferPair[] = [];

  constructor(platform: Platform, fn: PciFunction, options: TrafficOptions) {
    this.#platform = platform;
    this.#options = options;
    this.driver = new CopyEngineDriver(platform, fn, { ringEntries: 64 });
    this.stats = emptyStats('copy-engine', fn.bdf);
  }

  start(): this {
    this.driver.start();
    return this;
  }

  get drivers(): readonly [CopyEngineDriver] {
    return [this.driver];
  }

  /** One verified copy (or one injected fault). */
  async one(): Promise<void> {
    const { random, minBytes, maxBytes, faultRate } = this.#options;
    const memory = this.#platform.memory;
    const length = randomBetween(random, minBytes, maxBytes);
    const pair = this.#acquire(Math.ceil((length + 64) / PAGE));
    const data = new Uint8Array(length);
    fillRandom(random, data);
    scatter(memory.bytes, pair.source.pfns, data);
    for (const pfn of pair.destination.pfns) memory.fill(pfn * PAGE, PAGE, 0xc5);
    const inject = random() < faultRate;
    try {
      const completion = await this.driver.copy(inject ? UNMAPPED_IOVA : pair.source.iova, pair.destination.iova + 32, length);
      const landed = gather(memory.bytes, pair.destination.pfns, length + 64);
      if (inject) {
        this.stats.faultsInjected++;
        if (completion.status !== 0) this.stats.injectedFailures++;
        if (!landed.every((b) => b === 0xc5)) this.stats.mismatches++;
      } else if (completion.status !== 0) {
        this.stats.unexpectedFailures++;
      } else {
        this.stats.transfers++;
        this.stats.bytes += length;
        const canaries = landed.subarray(0, 32).every((b) => b === 0xc5) && landed.subarray(32 + length).every((b) => b === 0xc5);
        if (!canaries || !equal(landed.subarray(32, 32 + length), data)) this.stats.mismatches++;
      }
    } finally {
      noteFaults(this.stats, this.driver.faults);
      this.#release(pair);
    }
  }

  async stop(): Promise<void> {
    for (const pair of this.#pool.splice(0)) this.#unmap(pair);
    await this.driver.stop();
  }

  #acquire(pages: number): BufferPair {
    if (!this.#options.churn) {
      const reused = this.#pool.findIndex((pair) => pair.source.pfns.length >= pages);
      if (reused >= 0) return this.#pool.splice(reused, 1)[0]!;
      pages = Math.ceil((this.#options.maxBytes + 64) / PAGE);
    }
    const memory = this.#platform.memory;
    this.stats.mappings += 2;
    return {
      source: this.driver.mapBuffer(memory.allocatePages(pages), IOMMU_ACCESS_READ),
      destination: this.driver.mapBuffer(memory.allocatePages(pages), IOMMU_ACCESS_WRITE),
    };
  }

  #release(pair: BufferPair): void {
    if (this.#options.churn) this.#unmap(pair);
    else this.#pool.push(pair);
  }

  #unmap(pair: BufferPair): void {
    this.driver.unmapBuffer(pair.source);
    this.driver.unmapBuffer(pair.destination);
    this.#platform.memory.freePages([...pair.source.pfns, ...pair.destination.pfns]);
  }
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Writes `data` over the guest pages `pfns`, in order (the CPU filling a buffer). */
export function scatter(ram: Uint8Array, pfns: readonly number[], data: Uint8Array): void {
  for (let page = 0; page * PAGE < data.length; page++) ram.set(data.subarray(page * PAGE, (page + 1) * PAGE), pfns[page]! * PAGE);
}

/** The first `length` bytes of the guest pages `pfns`, in order (the CPU's view of a mapped buffer). */
export function gather(ram: Uint8Array, pfns: readonly number[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let page = 0; page * PAGE < length; page++) {
    const take = Math.min(PAGE, length - page * PAGE);
    out.set(ram.subarray(pfns[page]! * PAGE, pfns[page]! * PAGE + take), page * PAGE);
  }
  return out;
}
