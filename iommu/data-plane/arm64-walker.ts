import { AccessFlagFault, AddressSizeFault, TranslationFault } from '../../base/enums.js';
import { PAGE_SIZE, TWO_32 } from '../../base/numbers.js';
import type { Arm64Leaf } from './leaf-results.js';

/** log2 of the bytes one entry maps at levels 0..3. */
const LEVEL_SHIFT = [39, 30, 21, 12];

function startLevelFor(inputSize: number): number {
  return inputSize > 39 ? 0 : inputSize > 30 ? 1 : 2;
}

/**
 * Walks the guest's own VMSAv8-64 stage-1 translation tables in guest RAM (TTBR0 only,
 * 4 KiB granule), as an SMMU would for an unmanaged domain.
 *
 * Input size 25..48 bits picks the start level: >39 level 0, >30 level 1, else level 2.
 * Descriptors (64-bit, little-endian), bits [1:0]:
 *   0b00, 0b10   invalid                               -> TranslationFault
 *   0b11         level 0-2: table, next table at OA[47:12]; level 3: page, OA[47:12]
 *   0b01         level 1: 1 GiB block OA[47:30]; level 2: 2 MiB block OA[47:21];
 *                level 0 and 3: reserved                -> TranslationFault
 * Leaf attributes: AF (bit 10) clear -> AccessFlagFault; AP[2] (bit 7) set -> read-only.
 * Table attribute APTable[1] (bit 62) set -> everything below is read-only.
 * An input address at or above 2^InputSize0 -> TranslationFault; a table or output address
 * beyond guest memory -> AddressSizeFault. Faults are checked in that order, as on Arm.
 *
 * Returns -1 (DMA_OK) with the leaf written into `leaf` (the data plane's side-result
 * convention, leaf-results.ts), or a FAULT_INFORMATION_ARM64_TYPE.
 */
export function walkArm64(ram: Uint32Array, ramBytes: number, ttbr0: number, inputSize: number, address: number, leaf: Arm64Leaf): number {
  if (address >= 2 ** inputSize) return TranslationFault;
  let table = ttbr0;
  let writable = true;
  for (let level = startLevelFor(inputSize); level <= 3; level++) {
    const shift = LEVEL_SHIFT[level]!;
    const descriptor = table + ((address / 2 ** shift) & 511) * 8;
    if (descriptor + 8 > ramBytes) return AddressSizeFault;
    const low = ram[descriptor / 4]!;
    const high = ram[descriptor / 4 + 1]!;
    const type = low & 3;
    if ((type & 1) === 0) return TranslationFault;
    if (type === 3 && level < 3) {
      if ((high & 0x40000000) !== 0) writable = false;
      table = (high & 0xffff) * TWO_32 + ((low & 0xfffff000) >>> 0);
      continue;
    }
    if (type === 1 && (level === 0 || level === 3)) return TranslationFault;
    // A leaf: a page (level 3) or a block (levels 1, 2).
    const leafBytes = 2 ** shift;
    const outputBase = (high & 0xffff) * TWO_32 + (((low >>> 0) - ((low >>> 0) % leafBytes)) % TWO_32);
    const pageInLeaf = Math.floor((address % leafBytes) / PAGE_SIZE);
    const pageAddress = outputBase + pageInLeaf * PAGE_SIZE;
    if (pageAddress + PAGE_SIZE > ramBytes) return AddressSizeFault;
    if ((low & 0x400) === 0) return AccessFlagFault;
    if ((low & 0x80) !== 0) writable = false;
    const leafPfn = outputBase / PAGE_SIZE;
    // Cache a block whole only if it lies entirely inside guest memory.
    const whole = outputBase + leafBytes <= ramBytes;
    leaf.pfn = leafPfn + pageInLeaf;
    leaf.leafPfn = whole ? leafPfn : leafPfn + pageInLeaf;
    leaf.span = whole ? leafBytes / PAGE_SIZE : 1;
    leaf.access = writable ? 3 : 1;
    return -1;
  }
  return TranslationFault;
}
