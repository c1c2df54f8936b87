import { TWO_32 } from '../../base/numbers.js';
import type { GuestMemory } from '../../hardware/guest-memory.js';
import type { PciBus } from '../../hardware/pci-bus.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import { type DomainState, MAX_ADDRESS_BITS, type TokenState } from '../../iommu/control/handle-state.js';
import type { IommuCore } from '../../iommu/control/iommu-core.js';
import { ExtentKind } from '../../iommu/control/logical-space.js';
import { DomainTypeTranslate, DomainTypeUnmanaged } from '../../base/enums.js';
import type { ResolvedPlatformOptions } from '../platform-options.js';
import {
  kArmConfigured,
  kArmTranslationEnabled,
  kDomainArmFlagsField,
  kDomainInputSizeField,
  kDomainTtbr0HighField,
  kDomainTtbr0LowField,
} from '../../iommu/shared-memory/domain-table.js';
import { captureMemoryImage } from './memory-image.js';
import {
  type PlatformSnapshot,
  type SavedDevice,
  type SavedDomain,
  type SavedFunction,
  type SavedToken,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
} from './snapshot-format.js';

export interface CaptureSources {
  options: Readonly<ResolvedPlatformOptions>;
  memory: GuestMemory;
  bus: PciBus;
  iommu: IommuCore;
  /** Whether device `slot` has a doorbell no batch has served yet. */
  pending: (slot: number) => boolean;
  /** Whether guest RAM goes into the snapshot. */
  guestMemory: boolean;
}

/** The platform's state as plain data (see snapshot-format.ts). The caller made sure nothing runs. */
export function capturePlatform(from: CaptureSources): PlatformSnapshot {
  const { options, memory, bus, iommu } = from;
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    options: {
      memoryBytes: memory.size,
      arch: options.arch,
      workers: options.workers,
      faultReportingEx: options.faultReportingEx,
      maxDomains: options.maxDomains,
      maxFunctions: options.maxFunctions,
      deviceMemoryBytes: options.deviceMemoryBytes,
      pageTableBytes: options.pageTableBytes,
      iotlbEntries: options.iotlbEntries,
      iotlbWays: options.iotlbWays,
      faultRingCapacity: options.faultRingCapacity,
      invalidationLogCapacity: options.invalidationLogCapacity,
      inputMappingBase: options.inputMappingBase,
      iommuBaseAddress: options.iommuBaseAddress,
      deviceModels: [...options.deviceModels],
    },
    memory: from.guestMemory ? captureMemoryImage(memory.bytes) : null,
    allocation: memory.allocationState(),
    functions: bus.functions().map((fn) => captureFunction(bus, fn, from.pending(fn.slot))),
    iommu: {
      policy: { ...iommu.policy },
      lastDomainSerial: iommu.lastIds.domainSerial,
      lastHandleId: iommu.lastIds.handleId,
      domains: iommu.domainAt
        .filter((domain): domain is DomainState => domain !== undefined)
        .sort((a, b) => a.serial - b.serial)
        .map((domain) => captureDomain(iommu, domain)),
      devices: [...iommu.deviceOfFunction.values()]
        .sort((a, b) => a.handle.id - b.handle.id)
        .map(
          (device): SavedDevice => ({
            id: device.handle.id,
            function: device.pdo.slot,
            domain: device.domain?.serial ?? -1,
            faultReporting: device.faultConfig !== null,
            stateChangeCallback: device.registration !== null,
          }),
        ),
    },
  };
}

function captureFunction(bus: PciBus, fn: PciFunction, pending: boolean): SavedFunction {
  const registers = fn.registers;
  const privateMemory = bus.privateMemoryOf(fn);
  return {
    bus: fn.bus,
    device: fn.device,
    function: fn.function,
    model: fn.model,
    modelOptions: { ...fn.modelOptions },
    externalFacing: fn.externalFacing,
    behindIommu: fn.behindIommu,
    // A model with registers has its register file as BAR0, which addFunction adds itself.
    bars: fn.bars.slice(registers === null ? 0 : 1).map((bar) => ({ ...bar })),
    config: fn.config.bytes.slice(),
    registers: registers === null ? null : new Uint8Array(registers.words.buffer, registers.words.byteOffset, registers.size).slice(),
    privateMemory: privateMemory.length === 0 ? null : captureMemoryImage(privateMemory),
    peer: bus.peerOf(fn)?.slot ?? -1,
    pending,
  };
}

function captureDomain(iommu: IommuCore, domain: DomainState): SavedDomain {
  if (domain.type !== DomainTypeTranslate) {
    return {
      id: domain.serial,
      type: domain.type,
      addressBits: MAX_ADDRESS_BITS,
      allocator: null,
      extents: [],
      mappings: [],
      tokens: [],
      arm64: domain.type === DomainTypeUnmanaged ? captureArm64(iommu, domain) : null,
    };
  }
  const extents: number[] = [];
  const mappings: number[] = [];
  const tokens: SavedToken[] = [];
  for (const extent of domain.space.extents()) {
    let owner = 0;
    if (extent.kind === ExtentKind.Logical) {
      owner = typeof extent.owner === 'number' ? extent.owner : -1;
      domain.table.mappedRuns(extent.first, extent.pages, (page, pages, pfn, access) => mappings.push(page, pages, pfn, access));
    } else if (extent.kind === ExtentKind.Identity) {
      owner = extent.owner as number;
    } else if (extent.kind === ExtentKind.Token) {
      owner = tokens.length;
      tokens.push(captureToken(extent.owner as TokenState));
    }
    extents.push(extent.first, extent.pages, extent.kind, owner);
  }
  return {
    id: domain.serial,
    type: domain.type,
    addressBits: domain.addressBits,
    allocator: domain.allocator?.saveState() ?? null,
    extents,
    mappings,
    tokens,
    arm64: null,
  };
}

function captureToken(token: TokenState): SavedToken {
  const segments: number[] = [];
  const mappings: number[] = [];
  const table = token.domain.table;
  for (const segment of [...token.segments.values()].sort((a, b) => a.offsetPages - b.offsetPages)) {
    segments.push(segment.offsetPages, segment.pages);
    table.mappedRuns(token.firstPage + segment.offsetPages, segment.pages, (page, pages, pfn, access) => mappings.push(page, pages, pfn, access));
  }
  return {
    firstPage: token.firstPage,
    pages: token.pages,
    block: token.block === null ? null : [token.block.firstPage, token.block.order],
    segments,
    mappings,
  };
}

function captureArm64(iommu: IommuCore, domain: DomainState): SavedDomain['arm64'] {
  const fields = iommu.shared.domains;
  const flags = fields.get(domain.slot, kDomainArmFlagsField);
  if ((flags & kArmConfigured) === 0) return null;
  return {
    Ttbr0: (fields.get(domain.slot, kDomainTtbr0HighField) >>> 0) * TWO_32 + (fields.get(domain.slot, kDomainTtbr0LowField) >>> 0),
    InputSize0: fields.get(domain.slot, kDomainInputSizeField),
    TranslationEnabled: (flags & kArmTranslationEnabled) !== 0,
  };
}
