import { walkArm64 } from '../data-plane/arm64-walker.js';
import { Arm64Leaf } from '../data-plane/leaf-results.js';
import { DomainTypePassThrough, DomainTypeTranslate, DomainTypeUnmanaged, TranslationFault } from '../../base/enums.js';
import { PAGE_SIZE, TWO_32 } from '../../base/numbers.js';
import {
  kArmConfigured,
  kArmTranslationEnabled,
  kDomainArmFlagsField,
  kDomainInputSizeField,
  kDomainTtbr0HighField,
  kDomainTtbr0LowField,
  kDomainWalkCountField,
} from '../shared-memory/domain-table.js';
import { entryTarget, pagesPerEntry } from '../shared-memory/page-table-pool.js';
import { type DomainState, MAX_ADDRESS_BITS } from './handle-state.js';
import type { IommuCore } from './iommu-core.js';
import { ExtentKind } from './logical-space.js';

export type TranslationView = { physicalAddress: number; access: number; leafBytes: number } | { faultType: number };

/**
 * What `domain` translates `address` to right now, read from the tables themselves (not from
 * any IOTLB) on the main thread. Raises no fault and changes nothing: a debugger's view.
 */
export function inspectTranslation(core: IommuCore, domain: DomainState, address: number): TranslationView {
  const page = Math.floor(address / PAGE_SIZE);
  const offset = address % PAGE_SIZE;
  if (domain.type === DomainTypePassThrough) return { physicalAddress: address, access: 3, leafBytes: PAGE_SIZE };
  if (domain.type === DomainTypeTranslate) {
    const table = domain.table;
    const [entry, level] = table.lookup(page);
    if (entry === 0) return { faultType: TranslationFault };
    const span = pagesPerEntry(table.levels, level);
    const frame = entryTarget(entry) + (page % span);
    return { physicalAddress: frame * PAGE_SIZE + offset, access: (entry >>> 1) & 3, leafBytes: span * PAGE_SIZE };
  }
  if (domain.type === DomainTypeUnmanaged) {
    const domains = core.shared.domains;
    const flags = domains.get(domain.slot, kDomainArmFlagsField);
    if ((flags & kArmConfigured) === 0) return { faultType: TranslationFault };
    if ((flags & kArmTranslationEnabled) === 0) return { physicalAddress: address, access: 3, leafBytes: PAGE_SIZE };
    const ttbr0 = (domains.get(domain.slot, kDomainTtbr0HighField) >>> 0) * TWO_32 + (domains.get(domain.slot, kDomainTtbr0LowField) >>> 0);
    const bytes = core.memory.bytes;
    const ram = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    const leaf = new Arm64Leaf();
    const result = walkArm64(ram, core.memory.size, ttbr0, domains.get(domain.slot, kDomainInputSizeField), address, leaf);
    if (result !== -1) return { faultType: result };
    return { physicalAddress: leaf.pfn * PAGE_SIZE + offset, access: leaf.access, leafBytes: leaf.span * PAGE_SIZE };
  }
  return { faultType: TranslationFault };
}

export interface DomainSummary {
  type: number;
  /** Translate: logical address width in bits. */
  addressBits: number;
  allocator: 'buddy' | 'none';
  /** Buddy: logical pages still free. */
  freeLogicalPages: number | null;
  /** Translate: page tables (2 KiB each) the domain holds. */
  pageTables: number;
  /** Translate: every extent of the logical address space, in address order. */
  ranges: Array<{ kind: 'logical' | 'identity' | 'token' | 'reserved'; logicalAddress: number; pages: number }>;
  devices: number;
  tokens: number;
  asid: number;
  /** Page-table walks workers have done for this domain (IOTLB misses). */
  walks: number;
}

const kindNames = { [ExtentKind.Logical]: 'logical', [ExtentKind.Identity]: 'identity', [ExtentKind.Token]: 'token', [ExtentKind.Hole]: 'reserved' } as const;

export function describeDomain(core: IommuCore, domain: DomainState): DomainSummary {
  const translate = domain.type === DomainTypeTranslate ? domain : null;
  return {
    type: domain.type,
    addressBits: translate?.addressBits ?? MAX_ADDRESS_BITS,
    allocator: translate?.allocator == null ? 'none' : 'buddy',
    freeLogicalPages: translate?.allocator?.freePages ?? null,
    pageTables: translate?.table.tableCount ?? 0,
    ranges: (translate?.space.extents() ?? []).map((extent) => ({
      kind: kindNames[extent.kind as keyof typeof kindNames],
      logicalAddress: extent.first * PAGE_SIZE,
      pages: extent.pages,
    })),
    devices: domain.devices.size,
    tokens: translate?.tokens.size ?? 0,
    asid: domain.type === DomainTypeUnmanaged ? domain.asid : -1,
    walks: core.shared.domains.get(domain.slot, kDomainWalkCountField),
  };
}
