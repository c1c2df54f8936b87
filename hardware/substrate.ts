/**
 * The substrate as the IOMMU sees it: what a requester is, what physical memory is, and the
 * hooks through which the bus tells the IOMMU about its functions. The IOMMU (iommu/) imports
 * this module and nothing else of hardware/: it knows these interfaces, not the classes that
 * implement them (PciFunction, PciBus, GuestMemory).
 *
 * The direction follows QEMU's pci_setup_iommu(bus, ops, opaque): the IOMMU registers its
 * hooks with the bus (PciBus.setupIommu), and the bus calls them when a function is added or
 * its Bus Master Enable bit changes. The bus never writes the IOMMU's tables itself.
 */
import type { Opaque } from '../base/opaque.js';

/**
 * A PCI function as a DMA requester (the PDO the V2 routines take is one). Opaque: only the
 * bus's own functions (PciFunction) are requesters.
 */
export interface Requester extends Opaque<'DEVICE_OBJECT'> {
  /** Slot in the IOMMU's device context table (0 .. the bus's capacity - 1). */
  readonly slot: number;
  /** bus << 8 | device << 3 | function. */
  readonly requesterId: number;
  /** The requester ID plus the segment's input mapping base. */
  readonly inputMappingId: number;
  /** Whether the function's root port is external-facing (DMA Guard applies). */
  readonly externalFacing: boolean;
  /** Whether the IOMMU sits between the function and memory. */
  readonly behindIommu: boolean;
  /** "bb:dd.f", for messages. */
  readonly bdf: string;
}

/** The bus as the IOMMU sees it: which requesters exist. */
export interface RequesterBus {
  /** True for requesters this bus created (a PDO of this platform). */
  owns(value: unknown): value is Requester;
  /** The requester in context slot `slot`, if any. */
  functionAt(slot: number): Requester | undefined;
}

/** Guest physical memory as the IOMMU sees it: its size, and its bytes for the guest's own page tables. */
export interface PhysicalMemory {
  /** Bytes of guest RAM (a multiple of 4096). */
  readonly size: number;
  readonly pageCount: number;
  /** The RAM itself (a view that may start anywhere in its buffer; shared with the device workers when that is a SharedArrayBuffer). */
  readonly bytes: Uint8Array;
}

/** A memory descriptor list over guest physical pages (built by hardware/mdl.ts). */
export interface MDL {
  readonly ByteCount: number;
  readonly ByteOffset: number;
  readonly Pfns: readonly number[];
}

/** What the bus calls on the IOMMU registered with PciBus.setupIommu. */
export interface IommuHooks {
  /** A function joined the bus: it has no domain yet and may not master the bus. */
  functionAdded(fn: Requester): void;
  /** The function's Bus Master Enable bit changed; no DMA may start on the old setting afterwards. */
  busMasterChanged(fn: Requester, enabled: boolean): void;
}
