import { CopyEngineDriver, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, type Platform, type PciFunction } from 'viommu';
import { type DeviceStats, emptyStats, fillRandom, randomBetween, type TrafficOptions } from './device-stats.js';

const PAGE = 4096;
/** An IOVA the driver never maps (its buddy allocator hands out low addresses first). */
const UNMAPPED_IOVA = 0x7f00_0000_0000;

/**
 * Verified copy traffic on one copy engine: random data in, the same bytes out, canaries
 * around the destination intact; injected transfers read unmapped memory and must fail with
 * a DMA fault that the driver hears about.
 */
export class CopyTraffic {
  readonly stats: DeviceStats;
  readonly driver: CopyEngineDriver;
  readonly #platform: Platform;
  readonly #options: TrafficOptions;

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

  /** One verified copy (or one injected fault). */
  async one(): Promise<void> {
    const { random, minBytes, maxBytes, faultRate } = this.#options;
    const memory = this.#platform.memory;
    const length = randomBetween(random, minBytes, maxBytes);
    const pages = Math.ceil((length + 64) / PAGE);
    const sourcePages = memory.allocatePages(pages);
    const destinationPages = memory.allocatePages(pages);
    const data = new Uint8Array(length);
    fillRandom(random, data);
    for (let i = 0; i < pages; i++) memory.write(sourcePages[i]! * PAGE, data.subarray(i * PAGE, (i + 1) * PAGE));
    for (const pfn of destinationPages) memory.fill(pfn * PAGE, PAGE, 0xc5);
    const source = this.driver.mapBuffer(sourcePages, IOMMU_ACCESS_READ);
    const destination = this.driver.mapBuffer(destinationPages, IOMMU_ACCESS_WRITE);
    this.stats.mappings += 2;
    const inject = random() < faultRate;
    const faultsBefore = this.driver.faults.length;
    try {
      const completion = await this.driver.copy(inject ? UNMAPPED_IOVA : source.iova, destination.iova + 32, length);
      const landed = gather(memory.bytes, destination.pfns, length + 64);
      const canaries = landed.subarray(0, 32).every((b) => b === 0xc5) && landed.subarray(32 + length).every((b) => b === 0xc5);
      if (inject) {
        this.stats.faultsInjected++;
        if (completion.status !== 0) this.stats.injectedFailures++;
        if (!landed.every((b) => b === 0xc5)) this.stats.mismatches++;
      } else if (completion.status !== 0) {
        this.stats.unexpectedFailures++;
      } else {
        this.stats.transfers++;
        this.stats.bytes += length;
        if (!canaries || !equal(landed.subarray(32, 32 + length), data)) this.stats.mismatches++;
      }
    } finally {
      this.#collectFaults(faultsBefore);
      this.driver.unmapBuffer(source);
      this.driver.unmapBuffer(destination);
      memory.freePages([...sourcePages, ...destinationPages]);
    }
  }

  async stop(): Promise<void> {
    await this.driver.stop();
  }

  #collectFaults(from: number): void {
    const faults = this.driver.faults;
    this.stats.faultsReported += faults.length - from;
    for (let i = from; i < faults.length && this.stats.sampleFaults.length < 3; i++) this.stats.sampleFaults.push(faults[i]!);
    faults.length = 0;
  }
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
