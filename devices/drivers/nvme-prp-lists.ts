import { PAGE_SIZE } from '../../base/numbers.js';
import { IOMMU_ACCESS_READ, MapPhysicalAddressTypeMdl } from '../../base/enums.js';
import { STATUS_SUCCESS } from '../../base/ntstatus.js';
import type { DMA_IOMMU_INTERFACE_V2 } from '../../iommu/interface-table.js';
import type { IOMMU_DMA_DOMAIN, Out } from '../../iommu/types.js';
import type { DriverHost } from './driver-host.js';
import { DriverError } from './driver-base.js';

/** A PRP list page: where the device reads it, and where the driver writes it. */
export interface PrpPage {
  iova: number;
  physical: number;
}

/** Entries of a list page (a guest page: the driver sets the controller's memory page size, CC.MPS, to 4 KiB); the last one chains to the next page when more entries follow. */
const ENTRIES = PAGE_SIZE / 8;
/** List pages are mapped for the device (read only) this many at a time, and kept for reuse until release(). */
const CHUNK_PAGES = 8;

/**
 * The NVMe driver's PRP list pages: guest pages it allocates and maps read-only for its
 * device with MapLogicalRangeEx, handed out per command and taken back at completion.
 */
export class PrpLists {
  readonly #platform: DriverHost;
  readonly #V2: DMA_IOMMU_INTERFACE_V2;
  readonly #domain: IOMMU_DMA_DOMAIN;
  readonly #free: PrpPage[] = [];
  readonly #chunks: { iova: number; pfns: number[] }[] = [];

  constructor(platform: DriverHost, V2: DMA_IOMMU_INTERFACE_V2, domain: IOMMU_DMA_DOMAIN) {
    this.#platform = platform;
    this.#V2 = V2;
    this.#domain = domain;
  }

  /** List pages held (mapped), in use or free. */
  get pages(): number {
    return this.#chunks.length * CHUNK_PAGES;
  }

  /**
   * Writes the PRP entries of `count` (at least 2) consecutive logical pages from `firstPage`
   * into list pages, chaining through each page's last entry; returns the pages (PRP2 is the first).
   */
  build(firstPage: number, count: number): PrpPage[] {
    const pages = this.#take(Math.ceil((count - 1) / (ENTRIES - 1)));
    const memory = this.#platform.memory;
    let entry = 0;
    for (let p = 0; p < pages.length; p++) {
      const page = pages[p]!;
      for (let slot = 0; slot < ENTRIES && entry < count; slot++) {
        if (slot === ENTRIES - 1 && count - entry > 1) {
          memory.writeU64(page.physical + slot * 8, pages[p + 1]!.iova);
          break;
        }
        memory.writeU64(page.physical + slot * 8, firstPage + entry * PAGE_SIZE);
        entry++;
      }
    }
    return pages;
  }

  /** Takes back the pages of a completed (or abandoned) command. */
  giveBack(pages: readonly PrpPage[]): void {
    this.#free.push(...pages);
  }

  /** Unmaps every list page and returns it to guest memory (the device must be stopped). */
  release(): void {
    this.#free.length = 0;
    for (const chunk of this.#chunks.splice(0)) {
      const status = this.#V2.UnmapLogicalRange(this.#domain, chunk.iova, chunk.pfns.length);
      if (status !== STATUS_SUCCESS) throw new DriverError('UnmapLogicalRange', status);
      this.#platform.memory.freePages(chunk.pfns);
    }
  }

  #take(count: number): PrpPage[] {
    const memory = this.#platform.memory;
    while (this.#free.length < count) {
      const pfns = memory.allocatePages(CHUNK_PAGES);
      const iova: Out<number> = {};
      const description = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: memory.mdl(pfns) } };
      const status = this.#V2.MapLogicalRangeEx(this.#domain, IOMMU_ACCESS_READ, description, null, null, null, iova);
      if (status !== STATUS_SUCCESS) {
        memory.freePages(pfns);
        throw new DriverError('MapLogicalRangeEx', status);
      }
      this.#chunks.push({ iova: iova.value!, pfns });
      pfns.forEach((pfn, i) => {
        this.#free.push({ iova: iova.value! + i * PAGE_SIZE, physical: pfn * PAGE_SIZE });
      });
    }
    return this.#free.splice(this.#free.length - count, count);
  }
}
