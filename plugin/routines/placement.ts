import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../ntstatus.js';
import { BuddyAllocator } from '../control/buddy-allocator.js';
import type { Allocation, DomainState } from '../control/domain-state.js';
import { PAGE_SIZE } from '../numbers.js';
import { isAbsent } from './parameters.js';

/** Where a new logical range goes (MapLogicalRangeEx, ReserveLogicalAddressRange). */
export interface Placement {
  firstPage: number;
  /** The buddy block taken for it, or null (explicit placement). */
  block: { firstPage: number; order: number } | null;
}

/**
 * Chooses the logical pages for a range of `pages` pages in a Translate domain, after the
 * parameters themselves were validated:
 *  - explicit address: only without an allocator (else STATUS_NOT_SUPPORTED); the range must
 *    fit the domain's address space (else `outOfSpace`) and share no page with anything
 *    (else STATUS_RESOURCE_IN_USE);
 *  - no explicit address: only with an allocator (else STATUS_NOT_SUPPORTED); Min/Max are
 *    inclusive bounds the whole buddy block must lie in; Min > Max or no room inside them is
 *    STATUS_INVALID_PARAMETER_MIX, no room at all STATUS_INSUFFICIENT_RESOURCES.
 * On success `out` holds the placement; the caller either keeps it or calls `undoPlacement`.
 */
export function placeRange(
  domain: DomainState,
  pages: number,
  explicit: number | null | undefined,
  min: number | null | undefined,
  max: number | null | undefined,
  outOfSpace: NTSTATUS,
  out: Placement,
): NTSTATUS {
  const space = domain.space!;
  if (!isAbsent(explicit)) {
    if (domain.allocator !== null) return STATUS_NOT_SUPPORTED;
    const firstPage = explicit / PAGE_SIZE;
    if (firstPage + pages > domain.spacePages) return outOfSpace;
    if (space.overlapping(firstPage, pages) !== undefined) return STATUS_RESOURCE_IN_USE;
    out.firstPage = firstPage;
    out.block = null;
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
  out.block = { firstPage, order };
  return STATUS_SUCCESS;
}

/** Gives a placement's buddy block back (a later step of the routine failed). */
export function undoPlacement(domain: DomainState, placement: Placement): void {
  if (placement.block !== null) domain.allocator!.free(placement.block.firstPage, placement.block.order);
}

/** A buddy block as an allocation with `mappedPages` pages in use (the owner of its extent). */
export function recordAllocation( placement: Placement, mappedPages: number): Allocation | null {
  if (placement.block === null) return null;
  return { firstPage: placement.block.firstPage, order: placement.block.order, mappedPages };
}

/** Takes `pages` pages off an allocation; frees its block once nothing of it is mapped. */
export function releaseAllocationPages(domain: DomainState, allocation: Allocation, pages: number): void {
  allocation.mappedPages -= pages;
  if (allocation.mappedPages === 0) domain.allocator!.free(allocation.firstPage, allocation.order);
}
