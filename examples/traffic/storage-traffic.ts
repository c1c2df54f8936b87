import { IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, NvmeDriver, type MappedBuffer, type Platform, type PciFunction } from 'viommu';
import { equal, gather, scatter, UNMAPPED_IOVA } from './copy-traffic.js';
import { type DeviceStats, emptyStats, fillRandom, noteFaults, randomBetween, type TrafficOptions } from './device-stats.js';

const PAGE = 4096;
const LBA = 512;
/** Status of a command whose data transfer faulted (Data Transfer Error). */
const DATA_TRANSFER_ERROR = 0x04;

/**
 * Verified storage traffic on one NVMe-like controller: each transfer writes random blocks to
 * an LBA range owned by its lane, reads them back into a second buffer and compares. An
 * injected transfer writes from unmapped memory: the command must fail with a Data Transfer
 * Error and the blocks must keep their old contents (the controller stages writes).
 */
export class StorageTraffic {
  readonly stats: DeviceStats;
  readonly driver: NvmeDriver;
  readonly #platform: Platform;
  readonly #options: TrafficOptions;
  readonly #lanes: number;
  readonly #free: number[];
  /** What each lane last wrote successfully at the start of its range (to check injected writes changed nothing). */
  readonly #pool: MappedBuffer[] = [];
  #blocksPerLane = 0;

  constructor(platform: Platform, fn: PciFunction, options: TrafficOptions) {
    this.#platform = platform;
    this.#options = options;
    this.#lanes = options.depth;
    this.#free = Array.from({ length: options.depth }, (_, i) => i);
    this.driver = new NvmeDriver(platform, fn, { queueDepth: 64 });
    this.stats = emptyStats('nvme', fn.bdf);
  }

  get drivers(): readonly [NvmeDriver] {
    return [this.driver];
  }

  async start(): Promise<this> {
    await this.driver.start();
    this.#blocksPerLane = Math.floor(this.driver.identity.namespace.size / this.#lanes);
    return this;
  }

  async one(): Promise<void> {
    const { random, minBytes, maxBytes, faultRate } = this.#options;
    const lane = this.#free.pop()!;
    const blocks = Math.min(this.#blocksPerLane, Math.max(1, Math.ceil(randomBetween(random, minBytes, maxBytes) / LBA)));
    const bytes = blocks * LBA;
    const lba = lane * this.#blocksPerLane + Math.floor(random() * (this.#blocksPerLane - blocks + 1));
    const pages = Math.ceil(bytes / PAGE);
    const source = this.#acquire(pages, IOMMU_ACCESS_READ);
    const sink = this.#acquire(pages, IOMMU_ACCESS_WRITE);
    const memory = this.#platform.memory;
    const data = new Uint8Array(bytes);
    fillRandom(random, data);
    scatter(memory.bytes, source.pfns, data);
    const inject = random() < faultRate;
    try {
      if (inject) {
        // Read the range first, so that the failed write can be shown to change nothing.
        const before = await this.driver.read(lba, blocks, sink);
        const old = gather(memory.bytes, sink.pfns, bytes);
        const unmapped = { ...source, iova: UNMAPPED_IOVA };
        const { status } = await this.driver.write(lba, blocks, unmapped);
        this.stats.faultsInjected++;
        if (status === DATA_TRANSFER_ERROR) this.stats.injectedFailures++;
        const after = await this.driver.read(lba, blocks, sink);
        if (before.status !== 0 || after.status !== 0 || !equal(gather(memory.bytes, sink.pfns, bytes), old)) this.stats.mismatches++;
        return;
      }
      const written = await this.driver.write(lba, blocks, source);
      for (const pfn of sink.pfns) memory.fill(pfn * PAGE, PAGE, 0xc5);
      const read = await this.driver.read(lba, blocks, sink);
      if (written.status !== 0 || read.status !== 0) {
        this.stats.unexpectedFailures++;
        return;
      }
      this.stats.transfers++;
      this.stats.bytes += bytes;
      const landed = gather(memory.bytes, sink.pfns, pages * PAGE);
      if (!equal(landed.subarray(0, bytes), data) || !landed.subarray(bytes).every((b) => b === 0xc5)) this.stats.mismatches++;
    } finally {
      noteFaults(this.stats, this.driver.faults);
      this.#release(source);
      this.#release(sink);
      this.#free.push(lane);
    }
  }

  async stop(): Promise<void> {
    for (const buffer of this.#pool.splice(0)) this.#unmap(buffer);
    await this.driver.stop();
  }

  #acquire(pages: number, access: number): MappedBuffer {
    if (!this.#options.churn) {
      const reused = this.#pool.findIndex((buffer) => buffer.pfns.length >= pages);
      if (reused >= 0) return this.#pool.splice(reused, 1)[0]!;
      pages = Math.ceil(this.#options.maxBytes / PAGE) + 1;
      access = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;
    }
    this.stats.mappings++;
    return this.driver.mapBuffer(this.#platform.memory.allocatePages(pages), access);
  }

  #release(buffer: MappedBuffer): void {
    if (this.#options.churn) this.#unmap(buffer);
    else this.#pool.push(buffer);
  }

  #unmap(buffer: MappedBuffer): void {
    this.driver.unmapBuffer(buffer);
    this.#platform.memory.freePages(buffer.pfns);
  }
}
