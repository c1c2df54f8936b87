import { walkArm64 } from '../../iommu/data-plane/arm64-walker.js';
import { Arm64Leaf } from '../../iommu/data-plane/leaf-results.js';

/**
 * Test-side VMSAv8-64 stage-1 descriptor encoder and guest page-table builder (4 KiB granule, TTBR0),
 * written from the Arm ARM (DDI 0487, "VMSAv8-64 translation table descriptor formats"), not from
 * viommu's walker. Used by arm64-walker.test.ts and arm64-walker-faults.test.ts only.
 *
 *   bits[1:0]    0b11 table (levels 0-2) / page (level 3); 0b01 block (levels 1, 2); bit 0 clear: invalid
 *   bits[47:12]  next-level table address, or output address (page [47:12], 2 MiB block [47:21], 1 GiB [47:30])
 *   block/page lower attributes: AttrIndx[4:2], NS 5, AP[2:1] bits 7:6 (AP[2] set = read-only), SH 9:8, AF 10, nG 11
 *   block/page upper attributes: DBM 51, Contiguous 52, PXN 53, UXN 54, software 58:55, PBHA 62:59, 63 ignored
 *   table attributes: PXNTable 59, UXNTable 60, APTable[0] 61 (no EL0 access), APTable[1] 62 (no writes below), NSTable 63
 *
 * Each level resolves 9 bits of the input address: level 3 VA[20:12], level 2 VA[29:21], level 1 VA[38:30],
 * level 0 VA[47:39]. The start level is the one that leaves no more than 9 bits (inputSize - 12 split in
 * 9-bit strides, the top one possibly shorter): 4 - ceil((inputSize - 12) / 9).
 */

export const PAGE = 4096;
const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Windows' FAULT_INFORMATION_ARM64_TYPE values, written out rather than imported. */
export const ADDRESS_SIZE_FAULT = 1;
export const ACCESS_FLAG_FAULT = 5;
export const TRANSLATION_FAULT = 6;

export const READ_ONLY = 1;
export const READ_WRITE = 3;

export const VALID = 1n;
const TYPE_TABLE = 0b11n;
const TYPE_PAGE = 0b11n;
export const TYPE_BLOCK = 0b01n;
export const ATTR_INDX = (index: number): bigint => BigInt(index & 7) << 2n;
export const AP1 = 1n << 6n;
export const AP2 = 1n << 7n;
export const SH_INNER = 0b11n << 8n;
export const AF = 1n << 10n;
export const NG = 1n << 11n;
export const CONTIGUOUS = 1n << 52n;
export const PXN = 1n << 53n;
export const UXN = 1n << 54n;
export const SOFTWARE = 0b1111n << 55n;
export const PBHA = 0b1111n << 59n;
export const BIT63 = 1n << 63n;
export const PXN_TABLE = 1n << 59n;
export const UXN_TABLE = 1n << 60n;
export const AP_TABLE0 = 1n << 61n;
const AP_TABLE1 = 1n << 62n;
export const NS_TABLE = 1n << 63n;
const ADDRESS_47_12 = 0x0000_ffff_ffff_f000n;

/** What a Linux-like kernel puts in a normal-memory leaf besides the fields under test. */
export const NORMAL_LEAF_ATTRS = ATTR_INDX(4) | SH_INNER | AP1 | NG | PXN | UXN;

function levelShift(level: number): number {
  return 12 + 9 * (3 - level);
}
export function entryBytes(level: number): number {
  return 2 ** levelShift(level);
}
export function armStartLevel(inputSize: number): number {
  return 4 - Math.ceil((inputSize - 12) / 9);
}
/** The 9-bit index of `va` in a table at `level`. */
export function indexAt(va: number, level: number): number {
  return Math.floor(va / entryBytes(level)) % 512;
}

export interface LeafOptions {
  af?: boolean;
  readOnly?: boolean;
  /** Attribute bits besides AF and AP[2]; NORMAL_LEAF_ATTRS unless given. */
  attrs?: bigint;
}

function address47to12(address: number, alignment: number, what: string): bigint {
  if (!Number.isSafeInteger(address) || address < 0 || address >= 2 ** 48 || address % alignment !== 0) {
    throw new Error(`${what} 0x${address.toString(16)} is not a ${alignment}-aligned 48-bit address`);
  }
  return BigInt(address) & ADDRESS_47_12;
}

function leafBits({ af = true, readOnly = false, attrs = NORMAL_LEAF_ATTRS }: LeafOptions): bigint {
  return attrs | (af ? AF : 0n) | (readOnly ? AP2 : 0n);
}

export function tableDescriptor(nextTableAddress: number, { apTable1 = false, attrs = 0n }: { apTable1?: boolean; attrs?: bigint } = {}): bigint {
  return address47to12(nextTableAddress, PAGE, 'table') | attrs | (apTable1 ? AP_TABLE1 : 0n) | TYPE_TABLE;
}

export function pageDescriptor(outputAddress: number, options: LeafOptions = {}): bigint {
  return address47to12(outputAddress, PAGE, 'page') | leafBits(options) | TYPE_PAGE;
}

export function blockDescriptor(level: 1 | 2, outputAddress: number, options: LeafOptions = {}): bigint {
  return address47to12(outputAddress, entryBytes(level), `level ${level} block`) | leafBits(options) | TYPE_BLOCK;
}

export function leafDescriptor(level: 1 | 2 | 3, outputAddress: number, options: LeafOptions = {}): bigint {
  return level === 3 ? pageDescriptor(outputAddress, options) : blockDescriptor(level, outputAddress, options);
}

/** Guest RAM in a SharedArrayBuffer (zero-filled, committed lazily) with a bump allocator for table pages. */
export class GuestRam {
  readonly buffer: SharedArrayBuffer;
  readonly bytes: number;
  readonly ram32: Uint32Array;
  readonly #view: DataView;
  /** Where the next table page goes; tests may move it (tables above 4 GiB, say). */
  nextTable: number;

  constructor(bytes: number, firstTable = 0x10000) {
    this.buffer = new SharedArrayBuffer(bytes);
    this.bytes = bytes;
    this.ram32 = new Uint32Array(this.buffer);
    this.#view = new DataView(this.buffer);
    this.nextTable = firstTable;
  }

  allocTable(): number {
    const at = this.nextTable;
    if (at % PAGE !== 0 || at + PAGE > this.bytes) throw new Error(`no room for a table at 0x${at.toString(16)}`);
    this.nextTable += PAGE;
    return at;
  }

  /** A 64-bit descriptor, little-endian: low word at `address`, high word at `address + 4`. */
  write64(address: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.#view.setUint32(address, Number(v & 0xffff_ffffn), true);
    this.#view.setUint32(address + 4, Number(v >> 32n), true);
  }

  read64(address: number): bigint {
    return (BigInt(this.#view.getUint32(address + 4, true)) << 32n) | BigInt(this.#view.getUint32(address, true));
  }
}

export type Walk = { fault: number } | { pfn: number; leafPfn: number; span: number; access: number };

/** Calls the walker under test and copies out its result. */
export function walk(ram: GuestRam, ttbr0: number, inputSize: number, va: number, ramBytes = ram.bytes): Walk {
  const leaf = new Arm64Leaf();
  const result = walkArm64(ram.ram32, ramBytes, ttbr0, inputSize, va, leaf);
  if (result !== -1) return { fault: result };
  return { pfn: leaf.pfn, leafPfn: leaf.leafPfn, span: leaf.span, access: leaf.access };
}

export interface Mapping {
  va: number;
  size: number;
  pa: number;
  readOnly: boolean;
  af: boolean;
}

export interface MapOptions extends LeafOptions {
  level?: 1 | 2 | 3;
  /** Table levels on the path whose descriptor gets APTable[1]. */
  apTable1At?: readonly number[];
}

/** Builds one address space's tables in guest RAM and keeps the intended mappings for a reference model. */
export class PageTableBuilder {
  readonly ram: GuestRam;
  readonly inputSize: number;
  readonly startLevel: number;
  readonly root: number;
  readonly mappings: Mapping[] = [];
  readonly readOnlyRanges: { va: number; size: number }[] = [];
  /** Descriptor address -> the table it points to (the builder never decodes its own descriptors). */
  readonly #tables = new Map<number, number>();

  constructor(ram: GuestRam, inputSize: number) {
    this.ram = ram;
    this.inputSize = inputSize;
    this.startLevel = armStartLevel(inputSize);
    this.root = ram.allocTable();
  }

  /** The address of `va`'s descriptor at `level`, creating the tables above it. */
  slot(va: number, level: number): number {
    if (level < this.startLevel || level > 3) throw new Error(`level ${level} is not walked for input size ${this.inputSize}`);
    let table = this.root;
    for (let l = this.startLevel; l < level; l++) {
      const entry = table + indexAt(va, l) * 8;
      let next = this.#tables.get(entry);
      if (next === undefined) {
        if ((this.ram.read64(entry) & VALID) !== 0n) throw new Error(`0x${va.toString(16)}: level ${l} already holds a leaf`);
        next = this.ram.allocTable();
        this.#tables.set(entry, next);
        this.ram.write64(entry, tableDescriptor(next));
      }
      table = next;
    }
    return table + indexAt(va, level) * 8;
  }

  /** The table the descriptor at `entry` points to (a table this builder wrote). */
  tableAt(entry: number): number {
    const table = this.#tables.get(entry);
    if (table === undefined) throw new Error(`no table descriptor at 0x${entry.toString(16)}`);
    return table;
  }

  map(va: number, pa: number, options: MapOptions = {}): Mapping {
    const level = options.level ?? 3;
    const size = entryBytes(level);
    if (va % size !== 0 || va + size > 2 ** this.inputSize) throw new Error(`bad leaf address 0x${va.toString(16)}`);
    if (this.mappings.some((m) => va < m.va + m.size && m.va < va + size)) throw new Error(`0x${va.toString(16)} overlaps`);
    const entry = this.slot(va, level);
    if ((this.ram.read64(entry) & VALID) !== 0n) throw new Error(`0x${va.toString(16)}: entry in use`);
    this.ram.write64(entry, leafDescriptor(level, pa, options));
    for (const tableLevel of options.apTable1At ?? []) this.setApTable1(va, tableLevel);
    const mapping = { va, size, pa, readOnly: options.readOnly ?? false, af: options.af ?? true };
    this.mappings.push(mapping);
    return mapping;
  }

  /** Sets APTable[1] in the table descriptor at `level` on `va`'s path. */
  setApTable1(va: number, level: number): void {
    const entry = this.slot(va, level);
    this.ram.write64(entry, tableDescriptor(this.tableAt(entry), { apTable1: true }));
    const size = entryBytes(level);
    this.readOnlyRanges.push({ va: Math.floor(va / size) * size, size });
  }

  walk(va: number, ramBytes = this.ram.bytes): Walk {
    return walk(this.ram, this.root, this.inputSize, va, ramBytes);
  }

  /** Reference model: what the walk must return, from the intended mappings alone. */
  expected(va: number, ramBytes = this.ram.bytes): Walk {
    if (va >= 2 ** this.inputSize) return { fault: TRANSLATION_FAULT };
    const m = this.mappings.find((m) => va >= m.va && va < m.va + m.size);
    if (m === undefined) return { fault: TRANSLATION_FAULT };
    const page = m.pa + Math.floor((va - m.va) / PAGE) * PAGE;
    if (page + PAGE > ramBytes) return { fault: ADDRESS_SIZE_FAULT };
    if (!m.af) return { fault: ACCESS_FLAG_FAULT };
    const whole = m.pa + m.size <= ramBytes;
    const readOnly = m.readOnly || this.readOnlyRanges.some((r) => va >= r.va && va < r.va + r.size);
    return {
      pfn: page / PAGE,
      leafPfn: (whole ? m.pa : page) / PAGE,
      span: whole ? m.size / PAGE : 1,
      access: readOnly ? READ_ONLY : READ_WRITE,
    };
  }
}

/** A uniformly random integer in [0, limit), for limits up to 2^53. */
export function randomInt(random: () => number, limit: number): number {
  if (limit <= 2 ** 32) return Math.floor(random() * limit);
  const high = Math.floor(random() * Math.ceil(limit / 2 ** 32));
  return (high * 2 ** 32 + Math.floor(random() * 2 ** 32)) % limit;
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
