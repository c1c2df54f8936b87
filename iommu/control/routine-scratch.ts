/**
 * What the map routines fill and read back within one call, kept per IOMMU so that mapping
 * allocates nothing (IommuCore.scratch). Routines run one at a time on the main thread and
 * never call one another, so one set serves them all; each routine hands these to the
 * helpers that fill them (routines/physical-description.ts, routines/placement.ts), which
 * keep no state of their own. Nothing here outlives the routine that filled it.
 */
export class RoutineScratch {
  readonly runs = new PhysicalRuns();
  readonly placement = new Placement();
}

/**
 * The pages an IOMMU_MAP_PHYSICAL_ADDRESS describes, as `count` runs of physically
 * contiguous page frames: run i covers frames [firstFrames[i], firstFrames[i] + counts[i]).
 */
export class PhysicalRuns {
  firstFrames = new Float64Array(64);
  counts = new Float64Array(64);
  count = 0;
  pages = 0;
}

/** Where a new logical range goes (MapLogicalRangeEx, ReserveLogicalAddressRange). */
export class Placement {
  firstPage = 0;
  /** The buddy block taken for it (first page and order), or -1 for explicit placement. */
  blockFirstPage = -1;
  blockOrder = 0;
}
