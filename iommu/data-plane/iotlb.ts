import type { LeafReach } from './leaf-results.js';

/**
 * A worker's IOTLB: ordinary (unshared) typed arrays, one instance per worker thread, caching
 * leaf translations of both table formats (managed Translate tables and the guest's ARM64
 * tables) at their leaf size: 4 KiB, 2 MiB and 1 GiB.
 *
 * When invalidation is required: an entry must be dropped before any DMA that starts after a
 * mapping was removed or restricted (UnmapLogicalRange, UnmapIdentityRangeEx,
 * UnmapReservedLogicalRange, DeleteDomain) or after the driver flushed an unmanaged domain
 * (FlushDomain, FlushDomainByVaList, ConfigureDomain). Adding a mapping, or making one more
 * permissive, needs no invalidation: a miss simply walks the table again. The control plane
 * never touches this cache; it publishes what died (invalidation-log.ts for ranges, the
 * domain generation for whole domains) and the owning worker applies it at the start of its
 * next DMA (translation-engine.ts).
 *
 * Shape: set-associative arrays, one per leaf size (4 KiB, 2 MiB, 1 GiB) plus one for
 * coalesced runs of 16 contiguous 4 KiB leaves, with round-robin replacement inside a set.
 * A full cache evicts one entry of one set, never the whole cache (QEMU's VT-d, AMD-Vi and
 * SMMUv3 IOTLBs wipe everything when they reach 1024 or 256 entries).
 *
 * Each entry is tagged (domain slot, leaf number, domain generation) and holds
 * `pfn * 4 | access` (access: IOMMU_ACCESS_READ 1 | IOMMU_ACCESS_WRITE 2). Lookups return
 * that value for the looked-up page, or -1, and write how far the leaf reaches into the
 * caller's LeafReach (the side-result convention, leaf-results.ts). Nothing here allocates
 * after construction.
 */
export class IotlbArray {
  readonly sets: number;
  readonly ways: number;
  readonly spanPages: number;
  readonly #shift: number;
  readonly domain: Int32Array;
  readonly tag: Float64Array;
  readonly generation: Int32Array;
  readonly value: Int32Array;
  readonly #victim: Uint8Array;

  constructor(entries: number, ways: number, spanPages: number) {
    const sets = entries / ways;
    if (!Number.isInteger(Math.log2(sets)) || ways < 1 || ways > 255) throw new RangeError(`IOTLB of ${entries} entries cannot have ${ways} ways`);
    this.sets = sets;
    this.ways = ways;
    this.spanPages = spanPages;
    this.#shift = 32 - Math.log2(sets);
    this.domain = new Int32Array(entries).fill(-1);
    this.tag = new Float64Array(entries);
    this.generation = new Int32Array(entries);
    this.value = new Int32Array(entries);
    this.#victim = new Uint8Array(sets);
  }

  get capacity(): number {
    return this.domain.length;
  }

  /** Index of the first way of the set holding (domain, tag). */
  setOf(domain: number, tag: number): number {
    // Multiplicative hashing of the low 32 bits of the tag, mixed with the domain.
    const hash = Math.imul(tag | 0, 0x9e3779b1) ^ Math.imul(domain + 1, 0x85ebca77);
    return this.#shift === 32 ? 0 : (hash >>> this.#shift) * this.ways;
  }

  lookup(domain: number, tag: number, generation: number): number {
    const base = this.setOf(domain, tag);
    for (let i = base; i < base + this.ways; i++) {
      if (this.tag[i] === tag && this.domain[i] === domain && this.generation[i] === generation) return this.value[i]!;
    }
    return -1;
  }

  insert(domain: number, tag: number, generation: number, value: number): void {
    const set = this.setOf(domain, tag);
    // Reuse the way already holding (domain, tag), whatever its generation; else an empty
    // way; else evict the set's next victim (round robin).
    let way = -1;
    let empty = -1;
    for (let i = 0; i < this.ways; i++) {
      const at = set + i;
      if (this.domain[at] === domain && this.tag[at] === tag) {
        way = i;
        break;
      }
      if (empty < 0 && this.domain[at] === -1) empty = i;
    }
    if (way < 0) way = empty;
    if (way < 0) {
      const s = set / this.ways;
      way = this.#victim[s]!;
      this.#victim[s] = (way + 1) % this.ways;
    }
    const at = set + way;
    this.domain[at] = domain;
    this.tag[at] = tag;
    this.generation[at] = generation;
    this.value[at] = value;
  }

  /** Drops the entry for (domain, tag), if cached. */
  invalidate(domain: number, tag: number): void {
    const base = this.setOf(domain, tag);
    for (let i = base; i < base + this.ways; i++) {
      if (this.domain[i] === domain && this.tag[i] === tag) this.domain[i] = -1;
    }
  }

  /** Drops every entry of `domain` whose leaf overlaps pages [firstPage, endPage). */
  invalidateOverlapping(domain: number, firstPage: number, endPage: number): void {
    const span = this.spanPages;
    for (let i = 0; i < this.domain.length; i++) {
      if (this.domain[i] !== domain) continue;
      const leafFirst = this.tag[i]! * span;
      if (leafFirst < endPage && leafFirst + span > firstPage) this.domain[i] = -1;
    }
  }

  clear(): void {
    this.domain.fill(-1);
  }
}

/** A coalesced run: 16 consecutive 4 KiB leaves mapping 16 consecutive frames (like Arm's contiguous hint). */
export const SPAN_RUN = 16;
export const SPAN_2M = 512;
export const SPAN_1G = 512 * 512;

export interface IotlbOptions {
  /** 4 KiB entries (a power of two times `ways`). */
  entries?: number;
  ways?: number;
  /** 2 MiB and 1 GiB entries, each. */
  largeEntries?: number;
}

export class Iotlb {
  readonly pages: IotlbArray;
  readonly runs: IotlbArray;
  readonly blocks2M: IotlbArray;
  readonly blocks1G: IotlbArray;
  hits = 0;
  misses = 0;
  /** Whether any 2 MiB / 1 GiB leaf was cached since the last clear (skips two probes otherwise). */
  #holdsLarge = false;
  /** Whether any coalesced run was cached since the last clear. */
  #holdsRuns = false;

  constructor(options: IotlbOptions = {}) {
    const ways = options.ways ?? 4;
    const large = options.largeEntries ?? 64;
    this.pages = new IotlbArray(options.entries ?? 4096, ways, 1);
    this.runs = new IotlbArray(Math.max(ways, (options.entries ?? 4096) / SPAN_RUN), ways, SPAN_RUN);
    this.blocks2M = new IotlbArray(large, ways, SPAN_2M);
    this.blocks1G = new IotlbArray(large, ways, SPAN_1G);
  }

  /**
   * `pfn * 4 | access` for `page` of `domain` under `generation`, or -1. On a hit, `reach`
   * receives how many pages the cached leaf still covers from `page` on.
   */
  lookup(domain: number, page: number, generation: number, reach: LeafReach): number {
    let value = this.pages.lookup(domain, page, generation);
    if (value >= 0) {
      reach.pagesLeft = 1;
      this.hits++;
      return value;
    }
    if (this.#holdsRuns) {
      const tagRun = Math.floor(page / SPAN_RUN);
      value = this.runs.lookup(domain, tagRun, generation);
      if (value >= 0) {
        const inLeaf = page - tagRun * SPAN_RUN;
        reach.pagesLeft = SPAN_RUN - inLeaf;
        this.hits++;
        return value + inLeaf * 4;
      }
    }
    if (this.#holdsLarge) {
      const tag2M = Math.floor(page / SPAN_2M);
      value = this.blocks2M.lookup(domain, tag2M, generation);
      if (value >= 0) {
        const inLeaf = page - tag2M * SPAN_2M;
        reach.pagesLeft = SPAN_2M - inLeaf;
        this.hits++;
        return value + inLeaf * 4;
      }
      const tag1G = Math.floor(page / SPAN_1G);
      value = this.blocks1G.lookup(domain, tag1G, generation);
      if (value >= 0) {
        const inLeaf = page - tag1G * SPAN_1G;
        reach.pagesLeft = SPAN_1G - inLeaf;
        this.hits++;
        return value + inLeaf * 4;
      }
    }
    this.misses++;
    return -1;
  }

  /** Caches the leaf spanning `spanPages` pages that starts at page `leafFirst` and frame `pfn`. */
  insert(domain: number, leafFirst: number, spanPages: number, generation: number, pfn: number, access: number): void {
    const value = pfn * 4 + access;
    if (spanPages === 1) {
      this.pages.insert(domain, leafFirst, generation, value);
    } else if (spanPages === SPAN_RUN) {
      this.#holdsRuns = true;
      this.runs.insert(domain, leafFirst / SPAN_RUN, generation, value);
    } else if (spanPages === SPAN_2M) {
      this.#holdsLarge = true;
      this.blocks2M.insert(domain, leafFirst / SPAN_2M, generation, value);
    } else {
      this.#holdsLarge = true;
      this.blocks1G.insert(domain, leafFirst / SPAN_1G, generation, value);
    }
  }

  /** Drops every cached translation of `domain` that touches pages [firstPage, firstPage + count). */
  invalidateRange(domain: number, firstPage: number, count: number): void {
    if (count <= 64) {
      for (let page = firstPage; page < firstPage + count; page++) this.pages.invalidate(domain, page);
      if (this.#holdsRuns) {
        const lastRun = Math.floor((firstPage + count - 1) / SPAN_RUN);
        for (let run = Math.floor(firstPage / SPAN_RUN); run <= lastRun; run++) this.runs.invalidate(domain, run);
      }
    } else {
      this.pages.invalidateOverlapping(domain, firstPage, firstPage + count);
      if (this.#holdsRuns) this.runs.invalidateOverlapping(domain, firstPage, firstPage + count);
    }
    if (this.#holdsLarge) {
      this.blocks2M.invalidateOverlapping(domain, firstPage, firstPage + count);
      this.blocks1G.invalidateOverlapping(domain, firstPage, firstPage + count);
    }
  }

  clear(): void {
    this.pages.clear();
    this.runs.clear();
    this.#holdsRuns = false;
    this.blocks2M.clear();
    this.blocks1G.clear();
    this.#holdsLarge = false;
  }
}
