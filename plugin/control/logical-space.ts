/**
 * Who owns each page of a Translate domain's logical address space: the control plane's
 * bookkeeping beside the page table. Extents never overlap and are kept sorted, so every
 * question is a binary search plus a walk over the extents a range touches.
 */
export const ExtentKind = Object.freeze({
  /** Mapped by MapLogicalRangeEx; `owner` is the allocation it came from (or null). */
  Logical: 1,
  /** Mapped by MapIdentityRangeEx or a ShouldMap reserved region. */
  Identity: 2,
  /** Reserved by ReserveLogicalAddressRange; `owner` is the token. */
  Token: 3,
  /** A reserved region without ShouldMap: nothing may ever be placed there. */
  Hole: 4,
} as const);

export interface Extent {
  first: number;
  pages: number;
  kind: number;
  owner: unknown;
}

export class LogicalSpace {
  #extents: Extent[] = [];

  get size(): number {
    return this.#extents.length;
  }

  extents(): readonly Extent[] {
    return this.#extents;
  }

  /** The first extent that overlaps pages [first, first + pages), if any. */
  overlapping(first: number, pages: number): Extent | undefined {
    const candidate = this.#extents[this.#firstEndingAfter(first)];
    return candidate !== undefined && candidate.first < first + pages ? candidate : undefined;
  }

  /** The extent holding `page`, if any. */
  at(page: number): Extent | undefined {
    return this.overlapping(page, 1);
  }

  /** Adds an extent; the caller has checked that nothing overlaps it. */
  insert(extent: Extent): void {
    this.#extents.splice(this.#firstEndingAfter(extent.first), 0, extent);
  }

  /** True when every page of [first, first + pages) lies in extents of `kind`. */
  covered(first: number, pages: number, kind: number): boolean {
    let page = first;
    const end = first + pages;
    for (let i = this.#firstEndingAfter(first); page < end; i++) {
      const extent = this.#extents[i];
      if (extent === undefined || extent.first > page || extent.kind !== kind) return false;
      page = extent.first + extent.pages;
    }
    return true;
  }

  /**
   * Removes pages [first, first + pages), which `covered` has vouched for, splitting the
   * extents at the edges. `removed` sees each piece taken out, with its extent's owner.
   */
  remove(first: number, pages: number, removed: (pieceFirst: number, piecePages: number, owner: unknown) => void): void {
    const end = first + pages;
    let i = this.#firstEndingAfter(first);
    while (i < this.#extents.length) {
      const extent = this.#extents[i]!;
      if (extent.first >= end) break;
      const extentEnd = extent.first + extent.pages;
      const pieceFirst = Math.max(first, extent.first);
      const pieceEnd = Math.min(end, extentEnd);
      removed(pieceFirst, pieceEnd - pieceFirst, extent.owner);
      const keepBefore = pieceFirst - extent.first;
      const keepAfter = extentEnd - pieceEnd;
      if (keepBefore > 0 && keepAfter > 0) {
        extent.pages = keepBefore;
        this.#extents.splice(i + 1, 0, { first: pieceEnd, pages: keepAfter, kind: extent.kind, owner: extent.owner });
        i += 2;
      } else if (keepBefore > 0) {
        extent.pages = keepBefore;
        i++;
      } else if (keepAfter > 0) {
        extent.first = pieceEnd;
        extent.pages = keepAfter;
        i++;
      } else {
        this.#extents.splice(i, 1);
      }
    }
  }

  /** Removes every extent for which `match` is true (a deleted token, say). */
  removeWhere(match: (extent: Extent) => boolean): void {
    this.#extents = this.#extents.filter((extent) => !match(extent));
  }

  /** Index of the first extent whose end lies after `page`. */
  #firstEndingAfter(page: number): number {
    let low = 0;
    let high = this.#extents.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const extent = this.#extents[mid]!;
      if (extent.first + extent.pages <= page) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
