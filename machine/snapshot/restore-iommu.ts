import type { PciFunction } from '../../hardware/pci-function.js';
import { mintHandle } from '../../iommu/control/handles.js';
import { MAX_ADDRESS_BITS, TokenState, type TranslateDomainState } from '../../iommu/control/handle-state.js';
import type { IommuCore } from '../../iommu/control/iommu-core.js';
import { ExtentKind } from '../../iommu/control/logical-space.js';
import { DomainConfigurationArm64, DomainTypeMax, DomainTypeTranslate, DomainTypeUnmanaged, IommuDmaLogicalAllocatorBuddy } from '../../base/enums.js';
import { Errors } from '../../base/errors.js';
import { describeStatus, type NTSTATUS, STATUS_SUCCESS } from '../../base/ntstatus.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import { ConfigureDomain } from '../../iommu/routines/configure-domain.js';
import { AttachDeviceEx, CreateDevice } from '../../iommu/routines/devices.js';
import { CreateDomainEx } from '../../iommu/routines/domains.js';
import type { IOMMU_DMA_DEVICE, IOMMU_DMA_DOMAIN, IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, Out } from '../../iommu/types.js';
import { integerIn, list, record, tuples } from './snapshot-format.js';

/** A device whose callbacks the snapshot could not hold: register them again. */
export interface RebindNeeded {
  device: IOMMU_DMA_DEVICE;
  /** Its PCI function (the PDO; `pdo.inputMappingId` is what SetDeviceFaultReportingEx wants on arm64). */
  pdo: PciFunction;
  /** SetDeviceFaultReportingEx had enabled fault reporting (now disabled). */
  faultReporting: boolean;
  /** RegisterDmaDomainStateChangeCallback had been called (now unregistered). */
  stateChangeCallback: boolean;
}

export interface RestoredHandles {
  /** Every live domain, by id (the restored handles keep the ids they had). */
  domains: Map<number, IOMMU_DMA_DOMAIN>;
  /** Every DMA device, by id. */
  devices: Map<number, IOMMU_DMA_DEVICE>;
  /** Each domain's tokens, by domain id, in address order. */
  tokens: Map<number, IOMMU_DMA_LOGICAL_ADDRESS_TOKEN[]>;
  rebind: RebindNeeded[];
}

/**
 * Rebuilds the saved IOMMU state in a fresh core whose policy is already the saved one
 * (restorePlatform creates the platform with it): domains and devices are created through
 * the V2 routines (so their shared records are made as always), then each Translate domain
 * gets its allocator state, extents, tokens and mappings back exactly, and the attachments
 * are redone. Each part is checked before it is used; a bad part throws InvalidSnapshot.
 */
export function restoreIommu(core: IommuCore, value: unknown, functions: readonly PciFunction[]): RestoredHandles {
  const saved = record(value, 'iommu');
  const lastSerial = integerIn(saved.lastDomainSerial, 0, Number.MAX_SAFE_INTEGER, 'iommu.lastDomainSerial');
  const lastHandleId = integerIn(saved.lastHandleId, 0, Number.MAX_SAFE_INTEGER, 'iommu.lastHandleId');
  const restored: RestoredHandles = { domains: new Map(), devices: new Map(), tokens: new Map(), rebind: [] };

  let previous = 0;
  for (const [i, entry] of list(saved.domains, 'iommu.domains').entries()) {
    const what = `iommu.domains[${i}]`;
    const domain = record(entry, what);
    const id = integerIn(domain.id, previous + 1, lastSerial, `${what}.id`);
    previous = id;
    core.resumeIdsAfter(id - 1, lastHandleId);
    const handle = createDomain(core, domain, what);
    restored.domains.set(id, handle);
    const state = core.domains.get(handle)!;
    if (state.type === DomainTypeTranslate) restored.tokens.set(id, restoreTranslateDomain(core, state, domain, what));
    if (state.type === DomainTypeUnmanaged && domain.arm64 !== null) {
      const arm64 = record(domain.arm64, `${what}.arm64`);
      expect(ConfigureDomain(core, handle, { Type: DomainConfigurationArm64, Arm64: arm64 }), `${what}.arm64`, 'ConfigureDomain');
    }
  }

  previous = 0;
  for (const [i, entry] of list(saved.devices, 'iommu.devices').entries()) {
    const what = `iommu.devices[${i}]`;
    const device = record(entry, what);
    const id = integerIn(device.id, previous + 1, lastHandleId, `${what}.id`);
    previous = id;
    const fn = functions[integerIn(device.function, 0, functions.length - 1, `${what}.function`)]!;
    core.resumeIdsAfter(lastSerial, id - 1);
    const out: Out<IOMMU_DMA_DEVICE> = {};
    expect(CreateDevice(core, fn, null, out), what, 'CreateDevice');
    restored.devices.set(id, out.value!);
    const domainId = integerIn(device.domain, -1, lastSerial, `${what}.domain`);
    if (domainId >= 0) {
      const domain = restored.domains.get(domainId);
      if (domain === undefined) throw Errors.InvalidSnapshot(`${what}.domain names domain ${domainId}, which the snapshot does not hold`);
      expect(AttachDeviceEx(core, domain, out.value), what, 'AttachDeviceEx');
    }
    if (device.faultReporting === true || device.stateChangeCallback === true) {
      restored.rebind.push({
        device: out.value!,
        pdo: fn,
        faultReporting: device.faultReporting === true,
        stateChangeCallback: device.stateChangeCallback === true,
      });
    }
  }
  core.resumeIdsAfter(lastSerial, lastHandleId);
  return restored;
}

function createDomain(core: IommuCore, domain: Record<string, unknown>, what: string): IOMMU_DMA_DOMAIN {
  const type = integerIn(domain.type, 0, DomainTypeMax - 1, `${what}.type`);
  const addressBits = integerIn(domain.addressBits, 13, MAX_ADDRESS_BITS, `${what}.addressBits`);
  const buddy = domain.allocator !== null;
  if (!buddy && addressBits !== MAX_ADDRESS_BITS) throw Errors.InvalidSnapshot(`${what}.addressBits must be ${MAX_ADDRESS_BITS} without an allocator`);
  const allocatorConfig = buddy ? { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: addressBits } } : null;
  const out: Out<IOMMU_DMA_DOMAIN> = {};
  expect(CreateDomainEx(core, type, { AsUlonglong: 0 }, allocatorConfig, null, out), what, 'CreateDomainEx');
  return out.value!;
}

/** Allocator, extents, tokens and mappings of a Translate domain; returns its token handles. */
function restoreTranslateDomain(
  core: IommuCore,
  domain: TranslateDomainState,
  saved: Record<string, unknown>,
  what: string,
): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN[] {
  if (domain.allocator !== null && !domain.allocator.loadState(record(saved.allocator, `${what}.allocator`) as never)) {
    throw Errors.InvalidSnapshot(`${what}.allocator does not describe a buddy allocator of ${domain.addressBits} address bits`);
  }
  const extents = tuples(saved.extents, 4, `${what}.extents`);
  const savedTokens = list(saved.tokens, `${what}.tokens`);
  const tokens: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN[] = [];
  const space = domain.space;
  let end = 0;
  let logicalPages = 0;
  for (let i = 0; i < extents.length; i += 4) {
    const [first, pages, kind, owner] = [extents[i]!, extents[i + 1]!, extents[i + 2]!, extents[i + 3]!];
    if (first < end || pages < 1 || first + pages > domain.spacePages)
      throw Errors.InvalidSnapshot(`${what}.extents overlap, are out of order or leave the address space`);
    end = first + pages;
    if (kind === ExtentKind.Logical) {
      if (owner < -1 || owner > domain.addressBits || owner >= 0 !== (domain.allocator !== null))
        throw Errors.InvalidSnapshot(`${what}.extents: bad block order ${owner}`);
      space.insert(first, pages, kind, owner < 0 ? null : owner);
      logicalPages += pages;
    } else if (kind === ExtentKind.Identity) {
      if (owner < 1 || owner > 3) throw Errors.InvalidSnapshot(`${what}.extents: bad identity access ${owner}`);
      if (first + pages > core.memory.pageCount) throw Errors.InvalidSnapshot(`${what}.extents: identity range beyond guest memory`);
      mapChecked(core, domain, first, pages, first, owner, true, what);
      space.insert(first, pages, kind, owner);
    } else if (kind === ExtentKind.Hole) {
      space.insert(first, pages, kind, null);
    } else if (kind === ExtentKind.Token) {
      const saved = record(savedTokens[owner], `${what}.tokens[${owner}]`);
      tokens.push(restoreToken(core, domain, saved, first, pages, `${what}.tokens[${owner}]`));
    } else {
      throw Errors.InvalidSnapshot(`${what}.extents: unknown kind ${kind}`);
    }
  }
  const mappings = tuples(saved.mappings, 4, `${what}.mappings`);
  let mappedPages = 0;
  let mappedEnd = 0;
  for (let i = 0; i < mappings.length; i += 4) {
    const [page, pages, pfn, access] = [mappings[i]!, mappings[i + 1]!, mappings[i + 2]!, mappings[i + 3]!];
    // In address order and disjoint, so no page is mapped twice.
    if (page < mappedEnd || pages < 1 || !space.covered(page, pages, ExtentKind.Logical)) {
      throw Errors.InvalidSnapshot(`${what}.mappings: pages 0x${page.toString(16)}+${pages} are not an unmapped part of a logical mapping`);
    }
    mapChecked(core, domain, page, pages, pfn, access, true, what);
    mappedPages += pages;
    mappedEnd = page + pages;
  }
  if (mappedPages !== logicalPages) throw Errors.InvalidSnapshot(`${what}.mappings cover ${mappedPages} pages of its ${logicalPages} logically mapped pages`);
  core.refreshIdentityWindows(domain);
  return tokens;
}

function restoreToken(
  core: IommuCore,
  domain: TranslateDomainState,
  saved: Record<string, unknown>,
  first: number,
  pages: number,
  what: string,
): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
  if (saved.firstPage !== first || saved.pages !== pages) throw Errors.InvalidSnapshot(`${what} does not match its extent`);
  let block: TokenState['block'] = null;
  if (saved.block !== null) {
    const [blockFirst, order] = tuples(saved.block, 2, `${what}.block`);
    if (domain.allocator === null || order! < 0 || order! > domain.addressBits || blockFirst! > first || blockFirst! + 2 ** order! < first + pages) {
      throw Errors.InvalidSnapshot(`${what}.block does not hold the token`);
    }
    block = { firstPage: blockFirst!, order: order! };
  }
  const table = domain.table;
  if (core.tables.available() < table.missingTables(first, pages)) throw Errors.InvalidSnapshot(`${what}: the page-table pool is too small for it`);
  table.preallocate(first, pages);
  const handle = mintHandle<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>({ LogicalAddressBase: first * PAGE_SIZE, Size: pages * PAGE_SIZE });
  const token = new TokenState(handle, domain, first, pages, block);
  const segments = tuples(saved.segments, 2, `${what}.segments`);
  for (let i = 0; i < segments.length; i += 2) {
    const [offset, count] = [segments[i]!, segments[i + 1]!];
    if (offset < 0 || count < 1 || offset + count > pages || token.mapped.subarray(offset, offset + count).some((m) => m !== 0)) {
      throw Errors.InvalidSnapshot(`${what}.segments overlap or leave the token`);
    }
    token.mapped.fill(1, offset, offset + count);
    token.segments.set(offset, { offsetPages: offset, pages: count });
  }
  const mappings = tuples(saved.mappings, 4, `${what}.mappings`);
  let mappedPages = 0;
  let mappedEnd = first;
  for (let i = 0; i < mappings.length; i += 4) {
    const [page, count, pfn, access] = [mappings[i]!, mappings[i + 1]!, mappings[i + 2]!, mappings[i + 3]!];
    const offset = page - first;
    if (page < mappedEnd || count < 1 || offset + count > pages || token.mapped.subarray(offset, offset + count).some((m) => m !== 1)) {
      throw Errors.InvalidSnapshot(`${what}.mappings do not match its segments`);
    }
    mapChecked(core, domain, page, count, pfn, access, false, what);
    mappedPages += count;
    mappedEnd = page + count;
  }
  if (mappedPages !== token.mapped.reduce((sum, m) => sum + m, 0)) throw Errors.InvalidSnapshot(`${what}.mappings leave part of a segment unmapped`);
  domain.space.insert(first, pages, ExtentKind.Token, token);
  domain.tokens.add(token);
  return core.tokens.issue(handle, token);
}

function mapChecked(
  core: IommuCore,
  domain: TranslateDomainState,
  page: number,
  pages: number,
  pfn: number,
  access: number,
  allowLarge: boolean,
  what: string,
): void {
  if (access < 1 || access > 3) throw Errors.InvalidSnapshot(`${what}: bad access bits ${access}`);
  if (pfn < 0 || pfn + pages > core.memory.pageCount) throw Errors.InvalidSnapshot(`${what}: frames 0x${pfn.toString(16)}+${pages} lie beyond guest memory`);
  const table = domain.table;
  if (core.tables.available() < table.missingTables(page, pages)) throw Errors.InvalidSnapshot(`${what}: the page-table pool is too small for its mappings`);
  table.mapRun(page, pages, pfn, access, allowLarge);
}

function expect(status: NTSTATUS, what: string, routine: string): void {
  if (status !== STATUS_SUCCESS) throw Errors.InvalidSnapshot(`${what}: ${routine} answered ${describeStatus(status)}`);
}
