import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { BuddyAllocator } from '../control/buddy-allocator.js';
import type { TranslateDomainState } from '../control/handle-state.js';
import type { Placement } from '../control/routine-scratch.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import { isAbsent } from './parameters.js';

/**
 * Chooses the logical pages for a range of `pages` pages in a Translate domain, after the
 * parameters themselves were validated:
 *  - explicit address: only without an allocator (else STATUS_NOT_SUPPORTED); the range must
 *    fit the domain's address space (else `outOfSpace`) and share no page with anything
 *    (else STATUS_RESOURCE_IN_USE);
 *  - no explicit address: only with an allocator (else STATUS_NOT_SUPPORTED); Min/Max are
 *    inclusive bounds the whole buddy block must lie in; Min > Max or no room inside them is
 *    STATUS_INVALID_PARAMETER_MIX, no room at all STATUS_INSUFFICIENT_RESOURCES.
 * On success `out` (the routine's scratch, IommuCore.scratch.placement) holds the placement;
 * the caller either keeps it or calls `undoPlacement`.
 */
export function placeRange(
  domain: TranslateDomainState,
  pages: number,
  explicit: number | null | undefined,
  min: number | null | undefined,
  max: number | null | undefined,
  outOfSpace: NTSTATUS,
  out: Placement,
): NTSTATUS {
  const space = domain.space;
  if (!isAbsent(explicit)) {
    if (domain.allocator !== null) return STATUS_NOT_SUPPORTED;
    const firstPage = explicit / PAGE_SIZE;
    if (firstPage + pages > domain.spacePages) return outOfSpace;
    if (space.overlapping(firstPage, pages) !== undefined) return STATUS_RESOURCE_IN_USE;
    out.firstPage = firstPage;
    out.blockFirstPage = -1;
    return STATUS_SUCCESS;
  }
  const allocator = domain.allocator;
  if (allocator === null) return STATUS_NOT_SUPPORTED;
  const bounded = !isAbsent(min) || !isAbsent(max);
  const low = min ?? 0;
  const high = max ?? domain.spacePages * PAGE_SIZE - 1;
  if (low > high) return STATUS_INVALID_PARAMETER_MIX;
  const order = BuddyAllocator.orderFor(pages);
  const lowPage = Math.ceil(low / PAGE_SIZE);
  const highPage = Math.min(domain.spacePages, Math.floor((high + 1) / PAGE_SIZE));
  const firstPage = allocator.allocate(order, lowPage, highPage);
  if (firstPage < 0) return bounded ? STATUS_INVALID_PARAMETER_MIX : STATUS_INSUFFICIENT_RESOURCES;
  out.firstPage = firstPage;
  out.blockFirstPage = firstPage;
  out.blockOrder = order;
  return STATUS_SUCCESS;
}

/** Gives a placement's buddy block back (a later step of the routine failed). */
export function undoPlacement(domain: TranslateDomainState, placement: Placement): void {
  if (placement.blockFirstPage >= 0) domain.allocator?.free(placement.blockFirstPage, placement.blockOrder);
}

/**
 * The owner recorded on a Logical extent of a buddy domain: its block's order. Blocks are
 * aligned to their size, so any page of the extent and the order give the block back, and a
 * small integer needs no allocation. A block belongs to one MapLogicalRangeEx call, so once
 * no extent overlaps it, it is free.
 */
export function blockOwner(placement: Placement): number | null {
  return placement.blockFirstPage < 0 ? null : placement.blockOrder;
}

/**
 * After an unmap: gives back every block noted in `domain.touchedBlocks` that no extent
 * overlaps any more (its last mapped page is gone), and clears the list.
 */
export function releaseEmptyBlocks(domain: TranslateDomainState, allocator: BuddyAllocator): void {
  const touched = domain.touchedBlocks;
  for (let i = 0; i < domain.touchedCount; i++) {
    const firstPage = touched[2 * i]!;
    const order = touched[2 * i + 1]!;
    if (domain.space.overlapping(firstPage, POWERS_OF_TWO[order]!) === undefined) allocator.free(firstPage, order);
  }
  domain.touchedCount = 0;
}

const POWERS_OF_TWO = Array.from({ length: 64 }, (_, i) => 2 ** i);
