import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';

/**
 * Identity windows: for each Translate domain, up to WINDOWS_PER_DOMAIN page ranges that are
 * identity mapped (MapIdentityRangeEx, ShouldMap reserved regions), so that a worker
 * translates them without walking the page table (the IOMMU's "identity costs nothing"
 * fast path). The page table holds the same leaves, so a window is only ever a shortcut:
 * a worker that cannot read the windows consistently simply walks.
 *
 * Layout: Float64 values, `capacity` domains x WINDOWS_PER_DOMAIN windows x 3:
 *   [firstPage, endPage (exclusive), access]
 * guarded per domain by the domain table's kDomainIdentityCountField (how many windows are
 * valid) and kDomainIdentityVersionField (a seqlock: odd while the main thread rewrites them).
 */
export const WINDOWS_PER_DOMAIN = 8;
export const WINDOW_DOUBLES = 3;

export class IdentityWindows {
  readonly buffer: ArrayBufferLike;
  readonly values: Float64Array;

  static byteLengthFor(domains: number): number {
    return domains * WINDOWS_PER_DOMAIN * WINDOW_DOUBLES * 8;
  }

  static create(domains: number, allocate: BufferAllocator = sharedBuffer): IdentityWindows {
    return new IdentityWindows(allocate(IdentityWindows.byteLengthFor(domains)));
  }

  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.values = new Float64Array(buffer);
  }

  /** Index of window 0 of `domain` in `values`. */
  static baseOf(domain: number): number {
    return domain * WINDOWS_PER_DOMAIN * WINDOW_DOUBLES;
  }
}
