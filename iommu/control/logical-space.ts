/**
 * Who owns each page of a Translate domain's logical address space: the control plane's
 * bookkeeping beside the page table. Extents never overlap and are kept sorted in chunks of
 * at most CHUNK extents (a two-level sorted list), so lookups are two binary searches and an
 * insert or removal moves at most a chunk, however many mappings a domain holds.
 */
export const ExtentKind = Object.freeze({
  /** Mapped by MapLogicalRangeEx; `owner` is the buddy block it came from (see placement.ts) or null. */
  Logical: 1,
  /** Mapped by MapIdentityRangeEx or a ShouldMap reserved region; `owner` is its access bits. */
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

/** Called for each piece `remove` takes out. */
export type RemovedPiece = (pieceFirst: number, piecePages: number, owner: unknown) => void;

const CHUNK = 64;

export class LogicalSpace {
  #chunks: Extent[][] = [];
  #size = 0;
  /** Extents removed from the space, kept for reuse (at most CHUNK). */
  #spare: Extent[] = [];

  get size(): number {
    return this.#size;
  }

  /** Every extent in address order (a fresh array: for summaries, not hot paths). */
  extents(): Extent[] {
    return this.#chunks.flat();
  }

  /** The first extent that overlaps pages [first, first + pages), if any. */
  overlapping(first: number, pages: number): Extent | undefined {
    const c = this.#chunkEndingAfter(first);
    const chunk = this.#chunks[c];
    if (chunk === undefined) return undefined;
    const candidate = chunk[endingAfter(chunk, first)]!;
    return candidate.first < first + pages ? candidate : undefined;
  }

  /** The extent holding `page`, if any. */
  at(page: number): Extent | undefined {
    return this.overlapping(page, 1);
  }

  /** Adds an extent; the caller has checked that nothing overlaps it. */
  insert(first: number, pages: number, kind: number, owner: unknown): void {
    // Removed extents are reused, so a map/unmap cycle allocates nothing here.
    const extent = this.#spare.pop() ?? { first: 0, pages: 0, kind: 0, owner: null };
    extent.first = first;
    extent.pages = pages;
    extent.kind = kind;
    extent.owner = owner;
    this.#size++;
    const chunks = this.#chunks;
    if (chunks.length === 0) {
      chunks.push([extent]);
      return;
    }
    let c = this.#chunkEndingAfter(extent.first);
    if (c === chunks.length) c--;
    const chunk = chunks[c]!;
    insertAt(chunk, endingAfter(chunk, extent.first), extent);
    if (chunk.length > CHUNK) chunks.splice(c + 1, 0, chunk.splice(CHUNK / 2));
  }

  /** True when every page of [first, first + pages) lies in extents of `kind`. */
  covered(first: number, pages: number, kind: number): boolean {
    const end = first + pages;
    let page = first;
    let c = this.#chunkEndingAfter(first);
    let chunk = this.#chunks[c];
    if (chunk === undefined) return false;
    let i = endingAfter(chunk, first);
    while (page < end) {
      if (i === chunk!.length) {
        chunk = this.#chunks[++c];
        i = 0;
        if (chunk === undefined) return false;
      }
      const extent = chunk![i++]!;
      if (extent.first > page || extent.kind !== kind) return false;
      page = extent.first + extent.pages;
    }
    return true;
  }

  /**
   * Removes pages [first, first + pages), which `covered` has vouched for, splitting the
   * extents at the edges. `removed` sees each piece taken out, with its extent's owner.
   */
  remove(first: number, pages: number, removed: RemovedPiece | null): void {
    const end = first + pages;
    let c = this.#chunkEndingAfter(first);
    let i = c < this.#chunks.length ? endingAfter(this.#chunks[c]!, first) : 0;
    while (c < this.#chunks.length) {
      const chunk = this.#chunks[c]!;
      if (i >= chunk.length) {
        if (chunk.length === 0) this.#chunks.splice(c, 1);
        else c++;
        i = 0;
        continue;
      }
      const extent = chunk[i]!;
      if (extent.first >= end) break;
      const extentEnd = extent.first + extent.pages;
      const pieceFirst = first > extent.first ? first : extent.first;
      const pieceEnd = end < extentEnd ? end : extentEnd;
      removed?.(pieceFirst, pieceEnd - pieceFirst, extent.owner);
      const keepBefore = pieceFirst - extent.first;
      const keepAfter = extentEnd - pieceEnd;
      if (keepBefore > 0 && keepAfter > 0) {
        extent.pages = keepBefore;
        insertAt(chunk, i + 1, { first: pieceEnd, pages: keepAfter, kind: extent.kind, owner: extent.owner });
        this.#size++;
        i += 2;
      } else if (keepBefore > 0) {
        extent.pages = keepBefore;
        i++;
      } else if (keepAfter > 0) {
        extent.first = pieceEnd;
        extent.pages = keepAfter;
        i++;
      } else {
        removeAt(chunk, i);
        this.#size--;
        if (this.#spare.length < CHUNK) {
          extent.owner = null;
          this.#spare.push(extent);
        }
      }
    }
    if (this.#chunks[c]?.length === 0) this.#chunks.splice(c, 1);
  }

  /** Removes every extent for which `match` is true (a deleted token, say). */
  removeWhere(match: (extent: Extent) => boolean): void {
    const kept = this.extents().filter((extent) => !match(extent));
    this.#size = kept.length;
    this.#chunks = [];
    for (let i = 0; i < kept.length; i += CHUNK / 2) this.#chunks.push(kept.slice(i, i + CHUNK / 2));
  }

  /** Index of the first chunk whose last extent ends after `page` (chunks.length if none). */
  #chunkEndingAfter(page: number): number {
    const chunks = this.#chunks;
    let low = 0;
    let high = chunks.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const chunk = chunks[mid]!;
      const last = chunk[chunk.length - 1]!;
      if (last.first + last.pages <= page) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

/** Index of the first extent of a sorted chunk that ends after `page`. */
function endingAfter(chunk: Extent[], page: number): number {
  let low = 0;
  let high = chunk.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const extent = chunk[mid]!;
    if (extent.first + extent.pages <= page) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** splice(at, 0, extent) without the array splice allocates for its result. */
function insertAt(chunk: Extent[], at: number, extent: Extent): void {
  chunk.push(extent);
  for (let i = chunk.length - 1; i > at; i--) chunk[i] = chunk[i - 1]!;
  chunk[at] = extent;
}

/** splice(at, 1), likewise without allocating. */
function removeAt(chunk: Extent[], at: number): void {
  for (let i = at; i < chunk.length - 1; i++) chunk[i] = chunk[i + 1]!;
  chunk.pop();
}
