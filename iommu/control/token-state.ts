import type { IOMMU_DMA_LOGICAL_ADDRESS_TOKEN } from '../types.js';
import type { DomainState } from './domain-state.js';

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
