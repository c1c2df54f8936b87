import { DomainTypePassThrough, DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, MapPhysicalAddressTypeContiguousRange } from '../../base/enums.js';
import { Errors } from '../../base/errors.js';
import { describeStatus, STATUS_SUCCESS, type NTSTATUS } from '../../base/ntstatus.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import type { DMA_IOMMU_INTERFACE_EX, DMA_IOMMU_INTERFACE_V2 } from '../../iommu/interface-table.js';
import type { FAULT_INFORMATION, IOMMU_DMA_DEVICE, IOMMU_DMA_DOMAIN, Out } from '../../iommu/types.js';
import type { Platform } from '../platform.js';

/** A guest-physical range: [start, start + bytes), both page multiples. */
export type GuestRange = readonly [start: number, bytes: number];

export interface AssignmentOptions {
  /**
   * 'translate' (default): a Translate domain in which `ranges` are mapped at IOVA = GPA, so
   * every DMA is translated and checked; 'pass-through': a PassThrough domain (no translation).
   */
  domain?: 'translate' | 'pass-through';
  /** The guest-physical ranges the device may reach (default: all of guest RAM). */
  ranges?: readonly GuestRange[];
  /** Called on this thread with each fault the device raises (fault reporting is turned on). */
  onFault?: (fault: FAULT_INFORMATION) => void;
}

/**
 * A PCI function assigned to the guest, set up the way a hypervisor sets up the IOMMU for a
 * device it hands to a virtual machine whose OS knows nothing of the IOMMU: the guest's driver
 * programs guest-physical addresses into the device, so the device's domain maps the guest
 * RAM it may reach at IOVA = GPA. Everything goes through the V2 table: CreateDevice,
 * CreateDomainEx (Translate without a logical allocator, or PassThrough), MapLogicalRangeEx
 * with explicit logical addresses, AttachDeviceEx, SetDeviceFaultReportingEx.
 *
 * revoke() and restore() take ranges away from the device and give them back while the guest
 * runs (UnmapLogicalRange, MapLogicalRangeEx): a DMA that starts after revoke() returns faults.
 * use() moves the device between its Translate and PassThrough domains (DetachDeviceEx,
 * AttachDeviceEx), for side-by-side measurements.
 */
export class DeviceAssignment {
  readonly fn: PciFunction;
  readonly V2: DMA_IOMMU_INTERFACE_V2;
  readonly device: IOMMU_DMA_DEVICE;
  /** Faults reported so far. */
  faultCount = 0;
  readonly #platform: Platform;
  readonly #ranges: readonly GuestRange[];
  readonly #domains = new Map<'translate' | 'pass-through', IOMMU_DMA_DOMAIN>();
  #current: 'translate' | 'pass-through';
  #released = false;

  constructor(platform: Platform, fn: PciFunction, options: AssignmentOptions = {}) {
    if (!platform.bus.owns(fn)) throw Errors.NotAFunctionOfThisBus('fn');
    const kind = options.domain ?? 'translate';
    if (kind !== 'translate' && kind !== 'pass-through') throw Errors.InvalidArgument('options.domain', "'translate' or 'pass-through'", kind);
    const ranges = options.ranges ?? [[0, platform.memory.size] as const];
    for (const [start, bytes] of ranges) checkRange(start, bytes, platform.memory.size);
    if (options.onFault !== undefined && typeof options.onFault !== 'function') throw Errors.InvalidArgument('options.onFault', 'a function', options.onFault);
    this.#platform = platform;
    this.fn = fn;
    this.#ranges = ranges.map(([start, bytes]) => [start, bytes] as const);
    const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
    check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
    this.V2 = table.value!.V2;
    const device: Out<IOMMU_DMA_DEVICE> = {};
    check(this.V2.CreateDevice(fn, null, device), 'CreateDevice');
    this.device = device.value!;
    this.#current = kind;
    check(this.V2.AttachDeviceEx(this.#domain(kind), this.device), 'AttachDeviceEx');
    const onFault = options.onFault;
    const handler = (_context: unknown, fault: FAULT_INFORMATION) => {
      this.faultCount++;
      onFault?.(fault);
    };
    // On arm64 the base is the function's input mapping ID (its stream ID); x64 has none.
    const base = platform.arch === 'arm64' ? fn.inputMappingId : 0;
    check(this.V2.SetDeviceFaultReportingEx(this.device, base, true, { FaultHandler: handler, FaultContext: null }), 'SetDeviceFaultReportingEx');
  }

  /** The domain the device is attached to now. */
  get domain(): IOMMU_DMA_DOMAIN {
    return this.#domain(this.#current);
  }

  get domainType(): 'translate' | 'pass-through' {
    return this.#current;
  }

  /** Attaches the device to its Translate or PassThrough domain (made on first use). */
  use(kind: 'translate' | 'pass-through'): void {
    if (this.#released) throw Errors.PlatformClosed();
    if (kind === this.#current) return;
    const next = this.#domain(kind);
    check(this.V2.DetachDeviceEx(this.device), 'DetachDeviceEx');
    check(this.V2.AttachDeviceEx(next, this.device), 'AttachDeviceEx');
    this.#current = kind;
  }

  /** Unmaps `ranges` from the Translate domain: the device's DMA there faults from now on. Returns the first failure status, or STATUS_SUCCESS. */
  revoke(ranges: readonly GuestRange[]): NTSTATUS {
    const domain = this.#domain('translate');
    for (const [start, bytes] of ranges) {
      checkRange(start, bytes, this.#platform.memory.size);
      const status = this.V2.UnmapLogicalRange(domain, start, bytes / PAGE_SIZE);
      if (status !== STATUS_SUCCESS) return status;
    }
    return STATUS_SUCCESS;
  }

  /** Maps `ranges` into the Translate domain again, at IOVA = GPA, readable and writable. */
  restore(ranges: readonly GuestRange[]): NTSTATUS {
    const domain = this.#domain('translate');
    for (const [start, bytes] of ranges) {
      checkRange(start, bytes, this.#platform.memory.size);
      const status = mapAt(this.V2, domain, start, bytes);
      if (status !== STATUS_SUCCESS) return status;
    }
    return STATUS_SUCCESS;
  }

  /** Detaches the device and deletes its domains and its DMA device. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    check(this.V2.DetachDeviceEx(this.device), 'DetachDeviceEx');
    for (const domain of this.#domains.values()) check(this.V2.DeleteDomain(domain), 'DeleteDomain');
    check(this.V2.DeleteDevice(this.device), 'DeleteDevice');
  }

  #domain(kind: 'translate' | 'pass-through'): IOMMU_DMA_DOMAIN {
    const existing = this.#domains.get(kind);
    if (existing !== undefined) return existing;
    const out: Out<IOMMU_DMA_DOMAIN> = {};
    const type = kind === 'translate' ? DomainTypeTranslate : DomainTypePassThrough;
    // No logical allocator: the hypervisor places every mapping itself (IOVA = GPA).
    check(this.V2.CreateDomainEx(type, { AsUlonglong: 0 }, null, null, out), 'CreateDomainEx');
    const domain = out.value!;
    if (kind === 'translate') for (const [start, bytes] of this.#ranges) check(mapAt(this.V2, domain, start, bytes), 'MapLogicalRangeEx');
    this.#domains.set(kind, domain);
    return domain;
  }
}

/** MapLogicalRangeEx of guest-physical [start, start + bytes) at logical address `start`. */
function mapAt(V2: DMA_IOMMU_INTERFACE_V2, domain: IOMMU_DMA_DOMAIN, start: number, bytes: number): NTSTATUS {
  const physical = { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: start, Size: bytes } };
  return V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, physical, start, null, null, {});
}

function checkRange(start: unknown, bytes: unknown, memoryBytes: number): void {
  const valid =
    typeof start === 'number' &&
    typeof bytes === 'number' &&
    Number.isSafeInteger(start) &&
    Number.isSafeInteger(bytes) &&
    start >= 0 &&
    bytes > 0 &&
    start % PAGE_SIZE === 0 &&
    bytes % PAGE_SIZE === 0 &&
    start + bytes <= memoryBytes;
  if (!valid) throw Errors.ArgumentOutOfRange('range', `page-aligned [start, bytes] within guest RAM (0x${memoryBytes.toString(16)} bytes)`, [start, bytes]);
}

/** A set-up step the hypervisor cannot do without. */
function check(status: NTSTATUS, routine: string): void {
  if (status !== STATUS_SUCCESS) throw Errors.RoutineFailed(routine, describeStatus(status));
}
