/** Page-size arithmetic and the checks every routine applies to numbers. */

export const PAGE_SIZE = 4096;
/** 2^32: splits 64-bit values into two 32-bit words (addresses may exceed 2^32, so no shifts). */
export const TWO_32 = 2 ** 32;

/** A non-negative safe integer: the only kind of address, size or PFN the contract accepts. */
export function isAddress(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function isPageAligned(value: number): boolean {
  // `%` rather than `&`: addresses may exceed 2^32.
  return value % PAGE_SIZE === 0;
}

/** Whole pages in `bytes`, or -1 when `bytes` is not a positive page multiple. */
export function wholePages(bytes: number): number {
  return bytes > 0 && bytes % PAGE_SIZE === 0 ? bytes / PAGE_SIZE : -1;
}
