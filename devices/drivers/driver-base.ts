import { Errors } from '../../base/errors.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import { DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, IommuDmaLogicalAllocatorBuddy, MapPhysicalAddressTypeMdl } from '../../base/enums.js';
import { checkAccess, checkBuffer } from './arguments.js';
import { describeStatus, STATUS_INVALID_PARAMETER_1, STATUS_SUCCESS } from '../../base/ntstatus.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import type { DMA_IOMMU_INTERFACE_EX, DMA_IOMMU_INTERFACE_V2 } from '../../iommu/interface-table.js';
import type {
  DEVICE_FAULT_CONFIGURATION,
  FAULT_INFORMATION,
  IOMMU_DMA_DEVICE,
  IOMMU_DMA_DOMAIN,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  Out,
} from '../../iommu/types.js';
import type { DriverHost } from './driver-host.js';

/** A V2 routine answered with a failure status; the driver cannot go on. */
export class DriverError extends Error {
  readonly status: number;
  constructor(what: string, status: number) {
    super(`${what}: ${describeStatus(status)}`);
    this.name = 'DriverError';
    this.status = status;
  }
}

/** Guest memory the driver mapped for its device: the logical address the device uses. */
export interface MappedBuffer {
  readonly iova: number;
  readonly bytes: number;
  readonly pfns: readonly number[];
  /** Guest physical address of byte `offset` of the buffer (the CPU's view). */
  physical(offset: number): number;
}

/**
 * What every driver here does the way a Windows driver would, using only the V2 table and
 * the platform surface: create the DMA device, pick a domain type the policy allows, create
 * and attach a Translate domain with a buddy allocator, ask for fault reports, keep rings in
 * a reserved logical range (tokens map and unmap without allocating), map data buffers with
 * MapLogicalRangeEx, and undo all of it on stop().
 */
export class DriverBase {
  readonly platform: DriverHost;
  readonly fn: PciFunction;
  readonly V2: DMA_IOMMU_INTERFACE_V2;
  /** Faults the IOMMU reported for this device, in order. */
  readonly faults: FAULT_INFORMATION[] = [];
  device!: IOMMU_DMA_DEVICE;
  domain!: IOMMU_DMA_DOMAIN;
  #token: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN | null = null;
  #tokenUsed = 0;
  readonly #segments: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT[] = [];
  readonly #buffers = new Map<number, MappedBuffer>();
  readonly #ownedPages: number[] = [];
  #started = false;

  constructor(platform: DriverHost, fn: PciFunction) {
    this.platform = platform;
    this.fn = fn;
    const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
    this.#check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
    this.V2 = table.value!.V2;
  }

  /**
   * Brings the device under the IOMMU, with reserved logical space for rings of the given
   * sizes in bytes (each ring gets whole pages; see ring()).
   */
  protected attach(ringSizes: readonly number[]): void {
    const V2 = this.V2;
    const device: Out<IOMMU_DMA_DEVICE> = {};
    this.#check(V2.CreateDevice(this.fn, null, device), 'CreateDevice');
    this.device = device.value!;
    const available: Out<number> = {};
    V2.QueryAvailableDomainTypes(this.device, available);
    if (((available.value ?? 0) & (1 << DomainTypeTranslate)) === 0) throw new DriverError('QueryAvailableDomainTypes: no Translate domain', 0);
    const domain: Out<IOMMU_DMA_DOMAIN> = {};
    const allocator = { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 48 } };
    this.#check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, allocator, null, domain), 'CreateDomainEx');
    this.domain = domain.value!;
    this.#check(V2.AttachDeviceEx(this.domain, this.device), 'AttachDeviceEx');
    const inputMappingId = this.platform.arch === 'arm64' ? this.fn.inputMappingId : 0;
    const config: DEVICE_FAULT_CONFIGURATION = { FaultHandler: (_context, info) => this.faults.push(info), FaultContext: this };
    this.#check(V2.SetDeviceFaultReportingEx(this.device, inputMappingId, true, config), 'SetDeviceFaultReportingEx');
    const token: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN> = {};
    const reserved = ringSizes.reduce((sum, bytes) => sum + Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE, 0);
    this.#check(V2.ReserveLogicalAddressRange(this.domain, reserved, null, null, null, token), 'ReserveLogicalAddressRange');
    this.#token = token.value!;
    this.#started = true;
  }

  /** Allocates zeroed guest pages for a ring and maps them in the reserved range; returns the ring's IOVA. */
  protected ring(bytes: number, access = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE): MappedBuffer {
    const pages = Math.ceil(bytes / PAGE_SIZE);
    const first = this.platform.memory.allocateContiguousPages(pages);
    const pfns = Array.from({ length: pages }, (_, i) => first + i);
    this.#ownedPages.push(...pfns);
    this.platform.memory.fill(first * PAGE_SIZE, pages * PAGE_SIZE, 0);
    const segment: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT> = {};
    const description = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: this.platform.memory.mdl(pfns) } };
    const token = this.#token;
    // Before attach() there is no token: the answer Windows would give for a null one.
    if (token === null) throw new DriverError('MapReservedLogicalRange', STATUS_INVALID_PARAMETER_1);
    this.#check(this.V2.MapReservedLogicalRange(token, this.#tokenUsed, access, description, segment), 'MapReservedLogicalRange');
    this.#segments.push(segment.value!);
    const iova = token.LogicalAddressBase + this.#tokenUsed;
    this.#tokenUsed += pages * PAGE_SIZE;
    return { iova, bytes: pages * PAGE_SIZE, pfns, physical: (offset) => first * PAGE_SIZE + offset };
  }

  /** Maps guest pages `pfns` for the device with `access`; the returned buffer's iova is what the device uses. */
  mapBuffer(pfns: readonly number[], access = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE): MappedBuffer {
    checkAccess('access', access);
    const iova: Out<number> = {};
    const description = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: this.platform.memory.mdl(pfns) } };
    this.#check(this.V2.MapLogicalRangeEx(this.domain, access, description, null, null, null, iova), 'MapLogicalRangeEx');
    const buffer: MappedBuffer = {
      iova: iova.value!,
      bytes: pfns.length * PAGE_SIZE,
      pfns: [...pfns],
      physical: (offset) => pfns[Math.floor(offset / PAGE_SIZE)]! * PAGE_SIZE + (offset % PAGE_SIZE),
    };
    this.#buffers.set(buffer.iova, buffer);
    return buffer;
  }

  /** Removes a mapping made by mapBuffer; the device faults if it touches it afterwards. */
  unmapBuffer(buffer: MappedBuffer): void {
    checkBuffer('buffer', buffer);
    if (!this.#buffers.delete(buffer.iova)) throw Errors.BufferNotMapped('buffer', buffer.iova);
    this.#check(this.V2.UnmapLogicalRange(this.domain, buffer.iova, buffer.pfns.length), 'UnmapLogicalRange');
  }

  /** Mappings this driver holds now (data buffers; rings are in the reserved range). */
  get mappedBuffers(): number {
    return this.#buffers.size;
  }

  /** Undoes attach(): unmaps everything, frees the token, detaches, deletes domain and device. */
  protected detach(): void {
    if (!this.#started) return;
    this.#started = false;
    const V2 = this.V2;
    for (const buffer of [...this.#buffers.values()]) this.unmapBuffer(buffer);
    for (const segment of this.#segments.splice(0)) this.#check(V2.UnmapReservedLogicalRange(segment), 'UnmapReservedLogicalRange');
    if (this.#token !== null) this.#check(V2.FreeReservedLogicalAddressRange(this.#token), 'FreeReservedLogicalAddressRange');
    this.#token = null;
    this.#check(
      V2.SetDeviceFaultReportingEx(this.device, this.platform.arch === 'arm64' ? this.fn.inputMappingId : 0, false, null),
      'SetDeviceFaultReportingEx',
    );
    this.#check(V2.DetachDeviceEx(this.device), 'DetachDeviceEx');
    this.#check(V2.DeleteDomain(this.domain), 'DeleteDomain');
    this.#check(V2.DeleteDevice(this.device), 'DeleteDevice');
    this.platform.memory.freePages(this.#ownedPages.splice(0));
  }

  #check(status: number, what: string): void {
    if (status !== STATUS_SUCCESS) throw new DriverError(what, status);
  }
}
