import type { Requester } from '../../hardware/substrate.js';
import type {
  DEVICE_FAULT_CONFIGURATION,
  IOMMU_DMA_DEVICE,
  IOMMU_DMA_DOMAIN,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
} from '../types.js';
import { DomainTypePassThrough, DomainTypeTranslate, DomainTypeUnmanaged } from '../../base/enums.js';
import type { BuddyAllocator } from './buddy-allocator.js';
import { LogicalSpace } from './logical-space.js';
import type { ManagedPageTable } from './managed-page-table.js';

/*
 * The control plane's records behind the opaque handles: domains, DMA devices and logical
 * address tokens. They refer to each other (a domain knows its devices and tokens, a device
 * its domain, a token its domain), so they live together.
 */

/**
 * The logical address width of a Translate domain without an allocator (every safe integer
 * is an address), and the width other domain types report (they have no logical space).
 */
export const MAX_ADDRESS_BITS = 53;

/** What the record of every domain holds, whatever its type. */
abstract class DomainRecord {
  /** False once the handle was deleted or freed. */
  live = true;
  readonly handle: IOMMU_DMA_DOMAIN;
  /** Slot in the shared domain table. */
  readonly slot: number;
  /** Creation serial: the handle's id, and what fault records name. */
  readonly serial: number;
  readonly devices = new Set<DmaDeviceState>();

  constructor(handle: IOMMU_DMA_DOMAIN, slot: number, serial: number) {
    this.handle = handle;
    this.slot = slot;
    this.serial = serial;
  }
}

/** A Translate domain: a logical address space, its managed page table and, with Buddy, its allocator. */
export class TranslateDomainState extends DomainRecord {
  readonly type = DomainTypeTranslate;
  /** The logical address width in bits (AddressWidth, at most 53). */
  readonly addressBits: number;
  /** Pages of logical address space: [0, spacePages). */
  readonly spacePages: number;
  /** The buddy allocator, or null for explicit addresses only (IommuDmaLogicalAllocatorNone). */
  readonly allocator: BuddyAllocator | null;
  readonly space = new LogicalSpace();
  readonly table: ManagedPageTable;
  readonly tokens = new Set<TokenState>();
  /** Buddy blocks an unmap took pages from, as [first page, order] pairs (see routines/placement.ts releaseEmptyBlocks). */
  touchedBlocks = new Float64Array(32);
  touchedCount = 0;
  /** LogicalSpace.remove callback noting each piece's block; bound once, so unmapping allocates nothing. */
  readonly noteTouchedBlock = (first: number, _pages: number, owner: unknown): void => {
    if (typeof owner !== 'number') return;
    const size = 2 ** owner;
    const block = first - (first % size);
    const n = this.touchedCount;
    if (n > 0 && this.touchedBlocks[2 * n - 2] === block) return;
    if (2 * n + 2 > this.touchedBlocks.length) {
      const grown = new Float64Array(this.touchedBlocks.length * 2);
      grown.set(this.touchedBlocks);
      this.touchedBlocks = grown;
    }
    this.touchedBlocks[2 * n] = block;
    this.touchedBlocks[2 * n + 1] = owner;
    this.touchedCount = n + 1;
  };

  constructor(handle: IOMMU_DMA_DOMAIN, slot: number, serial: number, addressBits: number, allocator: BuddyAllocator | null, table: ManagedPageTable) {
    super(handle, slot, serial);
    this.addressBits = addressBits;
    this.spacePages = 2 ** (addressBits - 12);
    this.allocator = allocator;
    this.table = table;
  }
}

/** A PassThrough domain: DMA reaches guest memory untranslated. */
export class PassThroughDomainState extends DomainRecord {
  readonly type = DomainTypePassThrough;
}

/** An Unmanaged domain: the driver's own ARM64 tables (ConfigureDomain), walked in guest memory. */
export class UnmanagedDomainState extends DomainRecord {
  readonly type = DomainTypeUnmanaged;
  /** The ASID drawn from the pool (0..255). */
  readonly asid: number;

  constructor(handle: IOMMU_DMA_DOMAIN, slot: number, serial: number, asid: number) {
    super(handle, slot, serial);
    this.asid = asid;
  }
}

/** The control plane's record of one domain (the handle's hidden state), told apart by `type`. */
export type DomainState = TranslateDomainState | PassThroughDomainState | UnmanagedDomainState;

/** A state-change registration: at most one per DMA device. */
export interface StateChangeRegistration {
  readonly callback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK;
  readonly context: unknown;
  /** The mask last reported, so that only real changes are reported. */
  lastReported: number;
}

/** The control plane's record of one DMA device (an IOMMU_DMA_DEVICE handle's hidden state). */
export class DmaDeviceState {
  /** False once the handle was deleted or freed. */
  live = true;
  readonly handle: IOMMU_DMA_DEVICE;
  readonly pdo: Requester;
  domain: DomainState | null = null;
  registration: StateChangeRegistration | null = null;
  faultConfig: DEVICE_FAULT_CONFIGURATION | null = null;

  constructor(handle: IOMMU_DMA_DEVICE, pdo: Requester) {
    this.handle = handle;
    this.pdo = pdo;
  }
}

/** A mapped segment of a token: [offsetPages, offsetPages + pages). */
export interface TokenSegment {
  readonly offsetPages: number;
  readonly pages: number;
}

/** The hidden state of a logical address token (ReserveLogicalAddressRange). */
export class TokenState {
  /** False once the handle was deleted or freed. */
  live = true;
  readonly handle: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  readonly domain: TranslateDomainState;
  readonly firstPage: number;
  readonly pages: number;
  /** Buddy block backing the token, if the domain has an allocator. */
  readonly block: { firstPage: number; order: number } | null;
  /** Mapped segments by offset (pages). */
  readonly segments = new Map<number, TokenSegment>();
  /** Per page: 1 when mapped; the cheap overlap check for MapReservedLogicalRange. */
  readonly mapped: Uint8Array;

  constructor(handle: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, domain: TranslateDomainState, firstPage: number, pages: number, block: TokenState['block']) {
    this.handle = handle;
    this.domain = domain;
    this.firstPage = firstPage;
    this.pages = pages;
    this.block = block;
    this.mapped = new Uint8Array(pages);
  }
}
