import { mintHandle } from '../control/handles.js';
import type { IommuCore } from '../control/iommu-core.js';
import { ExtentKind } from '../control/logical-space.js';
import { TokenState } from '../control/handle-state.js';
import { DomainTypeTranslate } from '../../base/enums.js';
import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_INVALID_PARAMETER_6,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { isAddress, isPageAligned, PAGE_SIZE, wholePages } from '../../base/numbers.js';
import type { IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT, Out } from '../types.js';
import { isOptionalAddress, isOptionalPageAddress, isOut, isPermissions } from './parameters.js';
import { parsePhysicalDescription } from './physical-description.js';
import { placeRange, undoPlacement } from './placement.js';

/**
 * IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE: takes logical space (placed like MapLogicalRangeEx)
 * and builds every page table the range needs, so that mapping and unmapping inside the
 * token never allocate and never fail for lack of memory.
 */
export function ReserveLogicalAddressRange(
  core: IommuCore,
  Domain: unknown,
  Size: unknown,
  ExplicitLogicalAddress: unknown,
  MinLogicalAddress: unknown,
  MaxLogicalAddress: unknown,
  LogicalAddressToken: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>,
): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type !== DomainTypeTranslate) return STATUS_INVALID_PARAMETER_1;
  const pages = isAddress(Size) ? wholePages(Size) : -1;
  if (pages < 0) return STATUS_INVALID_PARAMETER_2;
  if (!isOptionalPageAddress(ExplicitLogicalAddress)) return STATUS_INVALID_PARAMETER_3;
  if (!isOptionalAddress(MinLogicalAddress)) return STATUS_INVALID_PARAMETER_4;
  if (!isOptionalAddress(MaxLogicalAddress)) return STATUS_INVALID_PARAMETER_5;
  if (!isOut(LogicalAddressToken)) return STATUS_INVALID_PARAMETER_6;

  const placement = core.scratch.placement;
  const status = placeRange(domain, pages, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, STATUS_INVALID_PARAMETER_3, placement);
  if (status !== STATUS_SUCCESS) return status;
  const table = domain.table;
  if (core.tables.available() < table.missingTables(placement.firstPage, pages)) {
    undoPlacement(domain, placement);
    return STATUS_INSUFFICIENT_RESOURCES;
  }
  table.preallocate(placement.firstPage, pages);
  const handle = mintHandle<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>({ LogicalAddressBase: placement.firstPage * PAGE_SIZE, Size: pages * PAGE_SIZE });
  const block = placement.blockFirstPage < 0 ? null : { firstPage: placement.blockFirstPage, order: placement.blockOrder };
  const token = new TokenState(handle, domain, placement.firstPage, pages, block);
  domain.space.insert(placement.firstPage, pages, ExtentKind.Token, token);
  domain.tokens.add(token);
  LogicalAddressToken.value = core.tokens.issue(handle, token);
  return STATUS_SUCCESS;
}

/** IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE: only a token with nothing mapped can go. */
export function FreeReservedLogicalAddressRange(core: IommuCore, LogicalAddressToken: unknown): NTSTATUS {
  const token = core.tokens.get(LogicalAddressToken);
  if (token === undefined) return STATUS_INVALID_PARAMETER_1;
  if (token.segments.size > 0) return STATUS_RESOURCE_IN_USE;
  const domain = token.domain;
  domain.space.remove(token.firstPage, token.pages, () => {});
  if (token.block !== null) domain.allocator?.free(token.block.firstPage, token.block.order);
  domain.tokens.delete(token);
  core.tokens.revoke(token.handle);
  return STATUS_SUCCESS;
}

/**
 * IOMMU_MAP_RESERVED_LOGICAL_RANGE: maps physical pages at token base + Offset with 4 KiB
 * leaves in the tables built at reservation time (it never allocates).
 */
export function MapReservedLogicalRange(
  core: IommuCore,
  LogicalAddressToken: unknown,
  Offset: unknown,
  Permissions: unknown,
  PhysicalAddressToMap: unknown,
  MappedSegment: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>,
): NTSTATUS {
  const token = core.tokens.get(LogicalAddressToken);
  if (token === undefined) return STATUS_INVALID_PARAMETER_1;
  if (!isAddress(Offset) || !isPageAligned(Offset)) return STATUS_INVALID_PARAMETER_2;
  if (!isPermissions(Permissions)) return STATUS_INVALID_PARAMETER_3;
  const runs = parsePhysicalDescription(PhysicalAddressToMap, core.memory, core.scratch.runs);
  if (runs === null) return STATUS_INVALID_PARAMETER_4;
  const offsetPages = Offset / PAGE_SIZE;
  if (offsetPages + runs.pages > token.pages) return STATUS_INVALID_PARAMETER_2;
  if (!isOut(MappedSegment)) return STATUS_INVALID_PARAMETER_5;
  for (let i = offsetPages; i < offsetPages + runs.pages; i++) if (token.mapped[i] !== 0) return STATUS_RESOURCE_IN_USE;

  const table = token.domain.table;
  let page = token.firstPage + offsetPages;
  for (let i = 0; i < runs.count; i++) {
    table.mapRun(page, runs.counts[i]!, runs.firstFrames[i]!, Permissions, false);
    page += runs.counts[i]!;
  }
  token.mapped.fill(1, offsetPages, offsetPages + runs.pages);
  token.segments.set(offsetPages, { offsetPages, pages: runs.pages });
  MappedSegment.value = { OwningToken: token.handle, Offset, Size: runs.pages * PAGE_SIZE };
  return STATUS_SUCCESS;
}

/**
 * IOMMU_UNMAP_RESERVED_LOGICAL_RANGE: the segment must be exactly one that is mapped now
 * (same token, offset and size), else STATUS_INVALID_PARAMETER. Page tables stay.
 */
export function UnmapReservedLogicalRange(core: IommuCore, MappedSegment: unknown): NTSTATUS {
  if (typeof MappedSegment !== 'object' || MappedSegment === null) return STATUS_INVALID_PARAMETER;
  const { OwningToken, Offset, Size } = MappedSegment as Partial<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>;
  const token = core.tokens.get(OwningToken);
  if (token === undefined || !isAddress(Offset) || !isAddress(Size) || Offset % PAGE_SIZE !== 0) return STATUS_INVALID_PARAMETER;
  const segment = token.segments.get(Offset / PAGE_SIZE);
  if (segment === undefined || segment.pages * PAGE_SIZE !== Size) return STATUS_INVALID_PARAMETER;
  const first = token.firstPage + segment.offsetPages;
  token.domain.table.unmap(first, segment.pages);
  core.invalidateRange(token.domain, first, segment.pages);
  token.mapped.fill(0, segment.offsetPages, segment.offsetPages + segment.pages);
  token.segments.delete(segment.offsetPages);
  return STATUS_SUCCESS;
}
