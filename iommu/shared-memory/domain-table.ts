import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';
import { Int32RecordTable } from '../../base/int32-record-table.js';

/**
 * The domain table: what a worker needs to translate for a domain, indexed by domain slot.
 *
 * Layout: `capacity` records of 16 Int32 fields (64 bytes), field indices `k...Field`:
 *
 *   kDomainTypeField        IOMMU_DMA_DOMAIN_TYPE, or kDomainFree
 *   kDomainRootField        Translate: index of the root table in the page-table pool
 *   kDomainLevelsField      Translate: table levels (1..5)
 *   kDomainGenerationField  bumped whenever every cached translation of the domain must go
 *                           (FlushDomain, ConfigureDomain, DeleteDomain); IOTLB entries carry
 *                           the generation they were filled under and die when it moves on
 *   kDomainSerialField      creation serial of the domain living in this slot (fault records)
 *   kDomainAsidField        Unmanaged: ASID (0..255), else -1
 *   kDomainArmFlagsField    Unmanaged: kArmConfigured | kArmTranslationEnabled
 *   kDomainTtbr0LowField    Unmanaged: Ttbr0 bits 31..0
 *   kDomainTtbr0HighField   Unmanaged: Ttbr0 bits 63..32
 *   kDomainInputSizeField   Unmanaged: InputSize0 (25..48)
 *   kDomainWalkCountField   page-table walks done for this domain, all workers (statistics)
 *   kDomainIdentityVersionField  seqlock over the domain's identity windows (identity-windows.ts)
 *   kDomainIdentityCountField    identity windows in use (0..8)
 *
 * Writers: the control plane only. Readers: every worker, after an Atomics.load of the
 * invalidation sequence (see invalidation-log.ts), which orders them after the writes that
 * preceded the matching sequence bump.
 */
export const DOMAIN_RECORD_INTS = 16;
export const kDomainFree = -1;

export const kDomainTypeField = 0;
export const kDomainRootField = 1;
export const kDomainLevelsField = 2;
export const kDomainGenerationField = 3;
export const kDomainSerialField = 4;
export const kDomainAsidField = 5;
export const kDomainArmFlagsField = 6;
export const kDomainTtbr0LowField = 7;
export const kDomainTtbr0HighField = 8;
export const kDomainInputSizeField = 9;
export const kDomainWalkCountField = 10;
export const kDomainIdentityVersionField = 11;
export const kDomainIdentityCountField = 12;

export const kArmConfigured = 0x1;
export const kArmTranslationEnabled = 0x2;

export class DomainTable extends Int32RecordTable {
  static byteLengthFor(capacity: number): number {
    return Int32RecordTable.bytesFor(DOMAIN_RECORD_INTS, capacity);
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): DomainTable {
    return new DomainTable(allocate(DomainTable.byteLengthFor(capacity))).initialise(kDomainTypeField, kDomainFree);
  }

  constructor(buffer: ArrayBufferLike) {
    super(buffer, DOMAIN_RECORD_INTS);
  }
}
