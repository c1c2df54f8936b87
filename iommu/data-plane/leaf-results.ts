/**
 * The data plane's side results, and the one convention for them (docs/data-plane.md, "Side
 * results"): a lookup on the hot path returns its primary result as a number (a translation
 * `pfn * 4 | access`, a page-table entry, DMA_OK or a fault type) and writes whatever else it
 * found into a result object that the caller owns, allocates once and passes as the last
 * argument. Named fields, no allocation per call, nothing in module-level state or in the
 * callee's private fields: the data flow shows in every signature, and a lookup is
 * re-entrant. The fields hold small integers, which V8 keeps unboxed.
 */

/** How far the leaf that maps a page reaches: written by IOTLB hits, identity windows and the engine's page resolution. */
export class LeafReach {
  /** Pages from the looked-up page to the end of its leaf (or identity window), that page included. */
  pagesLeft = 1;
}

/** What walkManaged found besides the leaf entry it returns. */
export class ManagedLeaf {
  /** Pages the leaf spans: 1, 512 or 262144. */
  span = 1;
  /** Index of the table holding the leaf entry in the page-table pool. */
  table = 0;
}

/** What walkArm64 found when it returns DMA_OK. */
export class Arm64Leaf {
  /** Frame of the walked page. */
  pfn = 0;
  /** First frame of the leaf as an IOTLB may cache it (the page's own frame when only that page may be cached). */
  leafPfn = 0;
  /** Pages that cacheable leaf spans: 1, 512 or 262144. */
  span = 1;
  /** IOMMU_ACCESS_READ (1), or read and write (3). */
  access = 0;
}
