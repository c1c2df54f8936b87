import type { Platform } from '../../machine/index.js';

/**
 * A guest-side builder of VMSAv8-64 stage-1 tables (4 KiB granule, TTBR0), written from the
 * Arm architecture's descriptor format, independently of viommu's walker:
 *   bits[1:0] 0b11 table (levels 0-2) / page (level 3), 0b01 block (levels 1-2)
 *   bits[47:12] next-level table address or output address (block: bits[47:30] / [47:21])
 *   bit 10 AF, bits[7:6] AP (AP[2] = bit 7: read-only), bit 62 APTable[1] (table: no writes below)
 */
export class GuestPageTables {
  readonly platform: Platform;
  readonly inputSize: number;
  readonly root: number;

  constructor(platform: Platform, inputSize = 48) {
    this.platform = platform;
    this.inputSize = inputSize;
    this.root = this.#newTable();
  }

  /** Maps the 4 KiB page at `va` to `pa` with a level-3 page descriptor. */
  mapPage(va: number, pa: number, options: { readOnly?: boolean; accessFlag?: boolean } = {}): void {
    const table = this.#tableFor(va, 3);
    this.#write(table + index(va, 3) * 8, pa, 0b11 | attributes(options));
  }

  /** Maps a 2 MiB (level 2) or 1 GiB (level 1) block at `va` to `pa`. */
  mapBlock(level: 1 | 2, va: number, pa: number, options: { readOnly?: boolean; accessFlag?: boolean } = {}): void {
    const table = this.#tableFor(va, level);
    this.#write(table + index(va, level) * 8, pa, 0b01 | attributes(options));
  }

  /** Makes the leaf at `va` invalid (bit 0 clear). */
  unmapPage(va: number): void {
    const table = this.#tableFor(va, 3);
    this.#write(table + index(va, 3) * 8, 0, 0);
  }

  /** A valid table descriptor's entry address for `va` at `level` (creating tables above it). */
  #tableFor(va: number, level: number): number {
    let table = this.root;
    for (let l = startLevel(this.inputSize); l < level; l++) {
      const at = table + index(va, l) * 8;
      const low = this.platform.memory.readU32(at);
      if ((low & 3) === 3) {
        table = (this.platform.memory.readU32(at + 4) & 0xffff) * 2 ** 32 + ((low & 0xfffff000) >>> 0);
        continue;
      }
      const next = this.#newTable();
      this.#write(at, next, 0b11);
      table = next;
    }
    return table;
  }

  #newTable(): number {
    const pfn = this.platform.memory.allocatePages(1)[0]!;
    this.platform.memory.fill(pfn * 4096, 4096, 0);
    return pfn * 4096;
  }

  /** Writes a descriptor: output/table address bits 47:12 plus the low attribute bits. */
  #write(at: number, address: number, lowBits: number): void {
    this.platform.memory.writeU32(at, ((address % 2 ** 32) & 0xfffff000) | lowBits);
    this.platform.memory.writeU32(at + 4, Math.floor(address / 2 ** 32) & 0xffff);
  }
}

function attributes(options: { readOnly?: boolean; accessFlag?: boolean }): number {
  return ((options.accessFlag ?? true) ? 1 << 10 : 0) | (options.readOnly ? 1 << 7 : 0);
}

function startLevel(inputSize: number): number {
  return inputSize > 39 ? 0 : inputSize > 30 ? 1 : 2;
}

/** The 9-bit table index of `va` at `level` (level 0 resolves VA[47:39] ... level 3 VA[20:12]). */
function index(va: number, level: number): number {
  return Math.floor(va / 2 ** (39 - 9 * level)) % 512;
}
