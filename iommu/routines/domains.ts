import { BuddyAllocator } from '../control/buddy-allocator.js';
import { type DomainState, MAX_ADDRESS_BITS, PassThroughDomainState, TranslateDomainState, UnmanagedDomainState } from '../control/handle-state.js';
import { mintHandle } from '../control/handles.js';
import type { IommuCore } from '../control/iommu-core.js';
import { ExtentKind } from '../control/logical-space.js';
import { ManagedPageTable } from '../control/managed-page-table.js';
import {
  DomainTypeMax,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorMax,
} from '../../base/enums.js';
import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { isAddress, PAGE_SIZE } from '../../base/numbers.js';
import {
  kArmConfigured,
  kDomainArmFlagsField,
  kDomainAsidField,
  kDomainLevelsField,
  kDomainRootField,
  kDomainSerialField,
  kDomainTypeField,
  kDomainWalkCountField,
} from '../shared-memory/domain-table.js';
import { levelsForAddressBits } from '../shared-memory/page-table-pool.js';
import type { IOMMU_DMA_DOMAIN, IOMMU_DMA_RESERVED_REGION, Out } from '../types.js';
import { isAbsent, isEnumBelow, isOut } from './parameters.js';

interface Region {
  firstPage: number;
  pages: number;
  shouldMap: boolean;
}

/** IOMMU_DOMAIN_CREATE_EX. */
export function CreateDomainEx(
  core: IommuCore,
  DomainType: unknown,
  Flags: unknown,
  LogicalAllocatorConfig: unknown,
  ReservedRegions: unknown,
  DomainOut: Out<IOMMU_DMA_DOMAIN>,
): NTSTATUS {
  if (!isEnumBelow(DomainType, DomainTypeMax)) return STATUS_INVALID_PARAMETER_1;
  if (!isZeroFlags(Flags)) return STATUS_INVALID_PARAMETER_2;
  const translate = DomainType === DomainTypeTranslate;
  let addressBits = MAX_ADDRESS_BITS;
  let buddy = false;
  if (!isAbsent(LogicalAllocatorConfig)) {
    if (!translate || typeof LogicalAllocatorConfig !== 'object') return STATUS_INVALID_PARAMETER_3;
    const config = LogicalAllocatorConfig as { LogicalAllocatorType?: unknown; BuddyAllocatorConfig?: { AddressWidth?: unknown } };
    if (!isEnumBelow(config.LogicalAllocatorType, IommuDmaLogicalAllocatorMax)) return STATUS_INVALID_PARAMETER_3;
    if (config.LogicalAllocatorType === IommuDmaLogicalAllocatorBuddy) {
      const width = config.BuddyAllocatorConfig?.AddressWidth;
      if (typeof width !== 'number' || !Number.isInteger(width) || width < 13 || width > 63) return STATUS_INVALID_PARAMETER_3;
      addressBits = Math.min(width, MAX_ADDRESS_BITS);
      buddy = true;
    }
  }
  const regions = parseRegions(ReservedRegions, translate, addressBits, core.memory.size);
  if (regions === null) return STATUS_INVALID_PARAMETER_4;
  if (!isOut(DomainOut)) return STATUS_INVALID_PARAMETER_5;
  if (DomainType === DomainTypeTranslateS1 || (DomainType === DomainTypeUnmanaged && core.arch !== 'arm64')) return STATUS_NOT_SUPPORTED;

  // Resources, all checked before anything changes.
  if (DomainType === DomainTypeUnmanaged && core.freeAsidCount === 0) return STATUS_INSUFFICIENT_RESOURCES;
  const levels = levelsForAddressBits(addressBits);
  if (translate) {
    let needed = 1;
    for (const region of regions) if (region.shouldMap) needed += ManagedPageTable.tablesSpanned(levels, region.firstPage, region.pages);
    if (core.tables.available() < needed) return STATUS_INSUFFICIENT_RESOURCES;
  }
  const taken = core.takeDomainSlot();
  if (taken === null) return STATUS_INSUFFICIENT_RESOURCES;

  const handle = mintHandle<IOMMU_DMA_DOMAIN>({ kind: 'IOMMU_DMA_DOMAIN', id: taken.serial });
  const domain: DomainState = translate
    ? createTranslateDomain(core, handle, taken.slot, taken.serial, addressBits, buddy, levels, regions)
    : DomainType === DomainTypeUnmanaged
      ? new UnmanagedDomainState(handle, taken.slot, taken.serial, core.takeAsid())
      : new PassThroughDomainState(handle, taken.slot, taken.serial);
  const shared = core.shared.domains;
  shared.set(domain.slot, kDomainSerialField, domain.serial);
  shared.set(domain.slot, kDomainRootField, domain.type === DomainTypeTranslate ? domain.table.root : 0);
  shared.set(domain.slot, kDomainLevelsField, domain.type === DomainTypeTranslate ? domain.table.levels : 0);
  shared.set(domain.slot, kDomainAsidField, domain.type === DomainTypeUnmanaged ? domain.asid : -1);
  shared.set(domain.slot, kDomainWalkCountField, 0);
  shared.set(domain.slot, kDomainArmFlagsField, domain.type === DomainTypeUnmanaged ? 0 : kArmConfigured);
  core.refreshIdentityWindows(domain);
  // The type goes last: it is what makes the slot live for a walker.
  shared.set(domain.slot, kDomainTypeField, DomainType);
  core.domainAt[domain.slot] = domain;
  DomainOut.value = core.domains.issue(handle, domain);
  return STATUS_SUCCESS;
}

/**
 * The record of a new Translate domain: its page table, its allocator (Buddy), and its
 * reserved regions claimed, ShouldMap ones identity mapped. CreateDomainEx has checked that
 * the page-table pool holds every table this needs.
 */
function createTranslateDomain(
  core: IommuCore,
  handle: IOMMU_DMA_DOMAIN,
  slot: number,
  serial: number,
  addressBits: number,
  buddy: boolean,
  levels: number,
  regions: readonly Region[],
): TranslateDomainState {
  const table = ManagedPageTable.create(core.tables, levels)!;
  const allocator = buddy ? new BuddyAllocator(addressBits - 12) : null;
  const domain = new TranslateDomainState(handle, slot, serial, addressBits, allocator, table);
  for (const region of regions) {
    // Regions never overlap (parseRegions), so each claim takes free space.
    allocator?.claimRange(region.firstPage, region.pages);
    if (region.shouldMap) {
      table.mapRun(region.firstPage, region.pages, region.firstPage, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, true);
      domain.space.insert(region.firstPage, region.pages, ExtentKind.Identity, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE);
    } else {
      domain.space.insert(region.firstPage, region.pages, ExtentKind.Hole, null);
    }
  }
  // Logical page 0 is never handed out, so that a zero IOVA always stands out as a bug
  // (unless a reserved region already holds it).
  if (allocator !== null && !regions.some((region) => region.firstPage === 0)) allocator.claimRange(0, 1);
  return domain;
}

/** IOMMU_DOMAIN_DELETE. */
export function DeleteDomain(core: IommuCore, Domain: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
  if (domain.devices.size > 0 || (domain.type === DomainTypeTranslate && domain.tokens.size > 0)) return STATUS_RESOURCE_IN_USE;
  // Remaining plain and identity mappings go with the tables. The tables are retired at the
  // sequence that retireDomainSlot publishes next, and reused only once every worker saw it.
  if (domain.type === DomainTypeTranslate) domain.table.destroy((core.shared.invalidations.sequence() + 1) | 0);
  if (domain.type === DomainTypeUnmanaged) core.releaseAsid(domain.asid);
  core.retireDomainSlot(domain);
  core.domains.revoke(domain.handle);
  return STATUS_SUCCESS;
}

/** IOMMU_DMA_DOMAIN_CREATION_FLAGS with every bit clear (the union or its AsUlonglong value). */
function isZeroFlags(flags: unknown): boolean {
  if (flags === 0) return true;
  return typeof flags === 'object' && flags !== null && (flags as { AsUlonglong?: unknown }).AsUlonglong === 0;
}

/**
 * The IOMMU_DMA_RESERVED_REGION list, or null when any region is misaligned, empty, beyond
 * the address width (or, for ShouldMap, beyond guest memory), overlapping another, or given
 * for a domain without a logical address space (PassThrough, Unmanaged).
 */
function parseRegions(head: unknown, translate: boolean, addressBits: number, memoryBytes: number): Region[] | null {
  const regions: Region[] = [];
  if (isAbsent(head)) return regions;
  if (!translate) return null;
  const seen = new Set<unknown>();
  let node: unknown = head;
  while (!isAbsent(node)) {
    if (typeof node !== 'object' || seen.has(node)) return null;
    seen.add(node);
    const region = node as IOMMU_DMA_RESERVED_REGION;
    if (!isAddress(region.Base) || region.Base % PAGE_SIZE !== 0) return null;
    if (!isAddress(region.NumberOfPages) || region.NumberOfPages === 0) return null;
    if (typeof region.ShouldMap !== 'boolean' && region.ShouldMap !== 0 && region.ShouldMap !== 1) return null;
    const firstPage = region.Base / PAGE_SIZE;
    if (firstPage + region.NumberOfPages > 2 ** (addressBits - 12)) return null;
    const shouldMap = Boolean(region.ShouldMap);
    if (shouldMap && region.Base + region.NumberOfPages * PAGE_SIZE > memoryBytes) return null;
    for (const other of regions) {
      if (firstPage < other.firstPage + other.pages && other.firstPage < firstPage + region.NumberOfPages) return null;
    }
    regions.push({ firstPage, pages: region.NumberOfPages, shouldMap });
    node = region.RegionNext;
  }
  return regions;
}
