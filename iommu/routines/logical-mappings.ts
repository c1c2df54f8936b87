import type { IommuCore } from '../control/iommu-core.js';
import { ExtentKind } from '../control/logical-space.js';
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
  STATUS_INVALID_PARAMETER_7,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { isAddress, isPageAligned, PAGE_SIZE } from '../../base/numbers.js';
import type { Out } from '../types.js';
import { isOptionalAddress, isOptionalPageAddress, isOut, isPermissions } from './parameters.js';
import { parsePhysicalDescription } from './physical-description.js';
import { blockOwner, placeRange, releaseEmptyBlocks, undoPlacement } from './placement.js';

/** IOMMU_MAP_LOGICAL_RANGE_EX. */
export function MapLogicalRangeEx(
  core: IommuCore,
  Domain: unknown,
  Permissions: unknown,
  PhysicalAddressToMap: unknown,
  ExplicitLogicalAddress: unknown,
  MinLogicalAddress: unknown,
  MaxLogicalAddress: unknown,
  LogicalAddressOut: Out<number>,
): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type !== DomainTypeTranslate) return STATUS_INVALID_PARAMETER_1;
  if (!isPermissions(Permissions)) return STATUS_INVALID_PARAMETER_2;
  const runs = parsePhysicalDescription(PhysicalAddressToMap, core.memory, core.scratch.runs);
  if (runs === null) return STATUS_INVALID_PARAMETER_3;
  if (!isOptionalPageAddress(ExplicitLogicalAddress)) return STATUS_INVALID_PARAMETER_4;
  if (!isOptionalAddress(MinLogicalAddress)) return STATUS_INVALID_PARAMETER_5;
  if (!isOptionalAddress(MaxLogicalAddress)) return STATUS_INVALID_PARAMETER_6;
  if (!isOut(LogicalAddressOut)) return STATUS_INVALID_PARAMETER_7;

  const placement = core.scratch.placement;
  const status = placeRange(domain, runs.pages, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, STATUS_INVALID_PARAMETER_4, placement);
  if (status !== STATUS_SUCCESS) return status;
  const table = domain.table;
  if (core.tables.available() < table.missingTables(placement.firstPage, runs.pages)) {
    undoPlacement(domain, placement);
    return STATUS_INSUFFICIENT_RESOURCES;
  }
  let page = placement.firstPage;
  for (let i = 0; i < runs.count; i++) {
    table.mapRun(page, runs.counts[i]!, runs.firstFrames[i]!, Permissions, true);
    page += runs.counts[i]!;
  }
  domain.space.insert(placement.firstPage, runs.pages, ExtentKind.Logical, blockOwner(placement));
  LogicalAddressOut.value = placement.firstPage * PAGE_SIZE;
  return STATUS_SUCCESS;
}

/**
 * IOMMU_UNMAP_LOGICAL_RANGE. Every page must belong to mappings made by MapLogicalRangeEx;
 * partial unmaps split a mapping; a buddy block returns once none of it is mapped. When the
 * routine returns, no DMA that starts afterwards can use the old translations.
 */
export function UnmapLogicalRange(core: IommuCore, Domain: unknown, LogicalAddress: unknown, NumberOfPages: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type !== DomainTypeTranslate) return STATUS_INVALID_PARAMETER_1;
  if (!isAddress(LogicalAddress) || !isPageAligned(LogicalAddress)) return STATUS_INVALID_PARAMETER_2;
  if (!isAddress(NumberOfPages) || NumberOfPages === 0) return STATUS_INVALID_PARAMETER_3;
  const first = LogicalAddress / PAGE_SIZE;
  if (first + NumberOfPages > domain.spacePages) return STATUS_INVALID_PARAMETER;
  if (!domain.space.covered(first, NumberOfPages, ExtentKind.Logical)) return STATUS_INVALID_PARAMETER;
  const table = domain.table;
  if (core.tables.available() < table.splitTablesNeeded(first, NumberOfPages)) return STATUS_INSUFFICIENT_RESOURCES;
  table.unmap(first, NumberOfPages);
  core.invalidateRange(domain, first, NumberOfPages);
  const allocator = domain.allocator;
  domain.space.remove(first, NumberOfPages, allocator === null ? null : domain.noteTouchedBlock);
  if (allocator !== null && domain.touchedCount > 0) releaseEmptyBlocks(domain, allocator);
  return STATUS_SUCCESS;
}
