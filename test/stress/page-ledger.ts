/**
 * The stress test's ground truth, shared between the main thread (which churns mappings)
 * and the checking workers: for every guest page, which logical slot it backs and whether
 * it was unmapped, at which invalidation sequence.
 *
 * Layout: Int32Array, 3 fields per guest page:
 *   [kLedgerSlot]       slot + 1 of the last mapping of this page, 0 if never mapped
 *   [kLedgerState]      kMapped or kUnmapped
 *   [kLedgerUnmapSeq]   the sequence UnmapLogicalRange published when it unmapped the page
 *                       (stored before the unmap, so no checker can miss it)
 */
export const LEDGER_FIELDS = 3;
export const kLedgerSlot = 0;
export const kLedgerState = 1;
export const kLedgerUnmapSeq = 2;
export const kMapped = 1;
export const kUnmapped = 2;

/** Word written over a page while it is unmapped. */
export const CANARY_WORD = 0xdbdbdbdb | 0;
/** Word filling the guard pages that are never mapped at all. */
export const GUARD_WORD = 0x6b6b6b6b;
/** Version field of data written by a device (rather than by the CPU). */
export const DEVICE_VERSION = 0xfffff;

/** Every 32-bit word of a mapped slot page: slot in bits 31..20, version in bits 19..0. */
export function patternWord(slot: number, version: number): number {
  return (slot << 20) | (version & 0xfffff) | 0;
}

export function slotOfWord(word: number): number {
  return word >>> 20;
}
