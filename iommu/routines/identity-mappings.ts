import type { IommuCore } from '../control/iommu-core.js';
import { ExtentKind } from '../control/logical-space.js';
import { DomainTypePassThrough, DomainTypeTranslate } from '../../base/enums.js';
import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { isPermissions } from './parameters.js';
import type { PhysicalRuns } from '../control/routine-scratch.js';
import { parsePhysicalDescription } from './physical-description.js';

/**
 * IOMMU_MAP_IDENTITY_RANGE_EX: each described page is mapped at its own physical address.
 * PassThrough domains need nothing. A domain whose allocator places addresses itself (Buddy)
 * does not allow explicit placement: STATUS_NOT_SUPPORTED, as Windows documents.
 */
export function MapIdentityRangeEx(core: IommuCore, Domain: unknown, Permissions: unknown, PhysicalAddressToMap: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || (domain.type !== DomainTypeTranslate && domain.type !== DomainTypePassThrough)) return STATUS_INVALID_PARAMETER_1;
  if (!isPermissions(Permissions)) return STATUS_INVALID_PARAMETER_2;
  const runs = parsePhysicalDescription(PhysicalAddressToMap, core.memory, core.scratch.runs);
  if (runs === null) return STATUS_INVALID_PARAMETER_3;
  if (domain.type === DomainTypePassThrough) return STATUS_SUCCESS;
  if (domain.allocator !== null) return STATUS_NOT_SUPPORTED;
  if (selfOverlapping(runs)) return STATUS_RESOURCE_IN_USE;
  const space = domain.space;
  const table = domain.table;
  let tablesNeeded = 0;
  for (let i = 0; i < runs.count; i++) {
    if (space.overlapping(runs.firstFrames[i]!, runs.counts[i]!) !== undefined) return STATUS_RESOURCE_IN_USE;
    tablesNeeded += table.missingTables(runs.firstFrames[i]!, runs.counts[i]!);
  }
  if (core.tables.available() < tablesNeeded) return STATUS_INSUFFICIENT_RESOURCES;
  for (let i = 0; i < runs.count; i++) {
    const first = runs.firstFrames[i]!;
    table.mapRun(first, runs.counts[i]!, first, Permissions, true);
    // An identity extent's owner is its access bits (the identity windows need them).
    space.insert(first, runs.counts[i]!, ExtentKind.Identity, Permissions);
  }
  core.refreshIdentityWindows(domain);
  return STATUS_SUCCESS;
}

/**
 * IOMMU_UNMAP_IDENTITY_RANGE_EX: every described page must currently be identity mapped in
 * this domain (by MapIdentityRangeEx or a ShouldMap reserved region), else
 * STATUS_INVALID_PARAMETER and nothing is removed. PassThrough domains need nothing.
 */
export function UnmapIdentityRangeEx(core: IommuCore, Domain: unknown, MappedPhysicalAddress: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || (domain.type !== DomainTypeTranslate && domain.type !== DomainTypePassThrough)) return STATUS_INVALID_PARAMETER_1;
  const runs = parsePhysicalDescription(MappedPhysicalAddress, core.memory, core.scratch.runs);
  if (runs === null) return STATUS_INVALID_PARAMETER_2;
  if (domain.type === DomainTypePassThrough) return STATUS_SUCCESS;
  if (selfOverlapping(runs)) return STATUS_INVALID_PARAMETER;
  const space = domain.space;
  const table = domain.table;
  let splits = 0;
  for (let i = 0; i < runs.count; i++) {
    if (!space.covered(runs.firstFrames[i]!, runs.counts[i]!, ExtentKind.Identity)) return STATUS_INVALID_PARAMETER;
    splits += table.splitTablesNeeded(runs.firstFrames[i]!, runs.counts[i]!);
  }
  if (core.tables.available() < splits) return STATUS_INSUFFICIENT_RESOURCES;
  for (let i = 0; i < runs.count; i++) {
    table.unmap(runs.firstFrames[i]!, runs.counts[i]!);
    space.remove(runs.firstFrames[i]!, runs.counts[i]!, () => {});
  }
  // Windows first, then the invalidations: a DMA that starts after them finds neither.
  core.refreshIdentityWindows(domain);
  for (let i = 0; i < runs.count; i++) core.invalidateRange(domain, runs.firstFrames[i]!, runs.counts[i]!);
  return STATUS_SUCCESS;
}

/** True when two runs of the description share a page. */
function selfOverlapping(runs: PhysicalRuns): boolean {
  if (runs.count < 2) return false;
  const order = Array.from({ length: runs.count }, (_, i) => i).sort((a, b) => runs.firstFrames[a]! - runs.firstFrames[b]!);
  for (let k = 1; k < order.length; k++) {
    const previous = order[k - 1]!;
    if (runs.firstFrames[previous]! + runs.counts[previous]! > runs.firstFrames[order[k]!]!) return true;
  }
  return false;
}
