import { type InvalidationLog, kInvalidateRange } from '../shared-memory/invalidation-log.js';
import type { Iotlb } from './iotlb.js';

/**
 * The reader's end of the invalidation log (layout and writer in
 * shared-memory/invalidation-log.ts): applies records `from` up to (not including) `to`, the
 * sequence the caller has just loaded with Atomics.load, to `iotlb`. Range records drop the
 * entries they overlap; domain and device records need nothing here (IOTLB entries carry
 * their domain's generation, and the engine forgets its cached device context). A reader
 * `capacity` or more records behind, or one whose record the writer lapped while it was
 * being read, cannot trust the ring and clears the whole IOTLB instead: always safe, merely
 * slower. Allocates nothing.
 */
export function applyInvalidations(log: InvalidationLog, from: number, to: number, iotlb: Iotlb): void {
  const behind = (to - from) | 0;
  if (behind < 0 || behind >= log.capacity) {
    iotlb.clear();
    return;
  }
  const records = log.records;
  for (let n = from; n !== to; n = (n + 1) | 0) {
    const at = log.offsetOf(n);
    const kind = records[at]!;
    const slot = records[at + 1]!;
    const firstPage = records[at + 2]!;
    const pageCount = records[at + 3]!;
    // If the writer has lapped record n while we read it, the record may be torn.
    if (((log.sequence() - n) | 0) >= log.capacity) {
      iotlb.clear();
      return;
    }
    if (kind === kInvalidateRange) iotlb.invalidateRange(slot, firstPage, pageCount);
  }
}
