import { Errors } from '../base/errors.js';
import { PAGE_SIZE } from '../base/numbers.js';
import type { MDL } from './substrate.js';

/**
 * Builds a memory descriptor list: `ByteCount` bytes starting `ByteOffset` bytes into the
 * first of `Pfns`, spanning exactly those pages (as ADDRESS_AND_SIZE_TO_SPAN_PAGES would).
 * The result is frozen, so a mapping can never change under the IOMMU's feet.
 */
export function buildMdl(pfns: readonly number[], byteCount: number, byteOffset: number, pageCount: number): MDL {
  if (!Array.isArray(pfns) || pfns.length === 0) throw Errors.InvalidArgument('pfns', 'a non-empty array of page frame numbers', pfns);
  for (const pfn of pfns) {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= pageCount) {
      throw Errors.ArgumentOutOfRange('pfns[]', `a page frame number below ${pageCount}`, pfn);
    }
  }
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset >= PAGE_SIZE) {
    throw Errors.ArgumentOutOfRange('byteOffset', 'an integer in 0..4095', byteOffset);
  }
  if (!Number.isSafeInteger(byteCount) || byteCount < 1) throw Errors.ArgumentOutOfRange('byteCount', 'a positive integer', byteCount);
  const spanned = Math.ceil((byteOffset + byteCount) / PAGE_SIZE);
  if (spanned !== pfns.length) {
    throw Errors.ArgumentOutOfRange('byteCount', `a size spanning exactly ${pfns.length} page(s) from byteOffset ${byteOffset}`, byteCount);
  }
  return Object.freeze({ ByteCount: byteCount, ByteOffset: byteOffset, Pfns: Object.freeze([...pfns]) });
}
