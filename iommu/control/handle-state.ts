import type { Requester } from '../../hardware/substrate.js';
import type {
  DEVICE_FAULT_CONFIGURATION,
  IOMMU_DMA_DEVICE,
  IOMMU_DMA_DOMAIN,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
} from '../types.js';
import type { BuddyAllocator } from './buddy-allocator.js';
import type { LogicalSpace } from './logical-space.js';
import type { ManagedPageTable } from './managed-page-table.js';

/*
 * The control plane's records behind the opaque handles: domains, DMA devices and logical
 * address tokens. They refer to each other (a domain knows its devices and tokens, a device
 * its domain, a token its domain), so they live together.
 */

/** The control plane's record of one domain (the handle's hidden state). */
export class DomainState {
  /** False once the handle was deleted or freed. */
  live = true;
  readonly handle: IOMMU_DMA_DOMAIN;
  readonly slot: number;
  readonly serial: number;
  readonly type: number;
  /** Translate: the logical address width in bits (AddressWidth, at most 53). */
  readonly addressBits: number;
  readonly allocator: BuddyAllocator | null;
  readonly space: LogicalSpace | null;
  readonly table: ManagedPageTable | null;
  readonly devices = new Set<DmaDeviceState>();
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
  /** Unmanaged: the ASID drawn from the pool, else -1. */
  asid: number;

  constructor(init: {
    handle: IOMMU_DMA_DOMAIN;
    slot: number;
    serial: number;
    type: number;
    addressBits: number;
    allocator: BuddyAllocator | null;
    space: LogicalSpace | null;
    table: ManagedPageTable | null;
    asid: number;
  }) {
    this.handle = init.handle;
    this.slot = init.slot;
    this.serial = init.serial;
    this.type = init.type;
    this.addressBits = init.addressBits;
    this.spacePages = 2 ** (init.addressBits - 12);
    this.allocator = init.allocator;
    this.space = init.space;
    this.table = init.table;
    this.asid = init.asid;
  }

  /** Pages of logical address space: [0, spacePages). */
  readonly spacePages: number;
}

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
  readonly domain: DomainState;
  readonly firstPage: number;
  readonly pages: number;
  /** Buddy block backing the token, if the domain has an allocator. */
  readonly block: { firstPage: number; order: number } | null;
  /** Mapped segments by offset (pages). */
  readonly segments = new Map<number, TokenSegment>();
  /** Per page: 1 when mapped; the cheap overlap check for MapReservedLogicalRange. */
  readonly mapped: Uint8Array;

  constructor(handle: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, domain: DomainState, firstPage: number, pages: number, block: TokenState['block']) {
    this.handle = handle;
    this.domain = domain;
    this.firstPage = firstPage;
    this.pages = pages;
    this.block = block;
    this.mapped = new Uint8Array(pages);
  }
}
