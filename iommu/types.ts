/**
 * The V2 structures as TypeScript types: plain objects whose keys are the Windows field names
 * (an anonymous C union's members are alternatives, told apart by the field that says which:
 * MapType, Type, ConfigType, LogicalAllocatorType). Addresses, sizes and page frame numbers are
 * JavaScript numbers (safe integers); the scalar aliases below keep the Windows names in the
 * signatures. Handles are opaque: only the objects the IOMMU issued have their types.
 */
import type {
  DomainConfigurationArm64,
  DomainConfigurationX64,
  FAULT_INFORMATION_ARM64_TYPE,
  FAULT_INFORMATION_X64_TYPE,
  FaultInformationArm64,
  FaultInformationX64,
  IommuDeviceCreationConfigTypeAcpi,
  IommuDeviceCreationConfigTypeDeviceId,
  IommuDeviceCreationConfigTypeNone,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorNone,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
} from '../base/enums.js';
import type { Opaque } from '../base/opaque.js';
import type { MDL, Requester } from '../hardware/substrate.js';

export type { MDL };

/** ULONG: an integer in 0 .. 2^32 - 1. */
export type ULONG = number;
/** ULONGLONG, ULONG64: a non-negative safe integer here. */
export type ULONGLONG = number;
/** SIZE_T: a byte count (a non-negative safe integer). */
export type SIZE_T = number;
/** UCHAR: an integer in 0 .. 255. */
export type UCHAR = number;
/** BOOLEAN: TRUE or FALSE. */
export type BOOLEAN = boolean;
/** PHYSICAL_ADDRESS: a guest physical address. */
export type PHYSICAL_ADDRESS = number;
/** PFN_NUMBER: a guest physical page frame number (address / 4096). */
export type PFN_NUMBER = number;
/** IOMMU_DMA_LOGICAL_ADDRESS: an address in a domain's logical (I/O virtual) address space. */
export type IOMMU_DMA_LOGICAL_ADDRESS = number;
/** PVOID: a context handed back to the caller as given. */
export type PVOID = unknown;
/** PMDL: a memory descriptor list (GuestMemory.mdl builds one). */
export type PMDL = MDL;

/** An `_Out_` parameter: the routine fills `value` on success and leaves it untouched on failure. */
export interface Out<T> {
  value?: T;
}

/** An `_In_opt_` pointer: null (or undefined) when not supplied. */
export type Opt<T> = T | null | undefined;

/**
 * A PDO (physical device object): a PCI function of the platform's bus (PciFunction),
 * as CreateDevice and QueryInputMappings take it and FAULT_INFORMATION_ARM64 reports it.
 */
export type DEVICE_OBJECT = Requester;
export type PDEVICE_OBJECT = DEVICE_OBJECT;

/** An opaque domain handle (CreateDomainEx issues it). `id` identifies it in messages and snapshots. */
export interface IOMMU_DMA_DOMAIN extends Opaque<'IOMMU_DMA_DOMAIN'> {
  readonly kind: 'IOMMU_DMA_DOMAIN';
  readonly id: number;
}
export type PIOMMU_DMA_DOMAIN = IOMMU_DMA_DOMAIN;

/** An opaque DMA device handle (CreateDevice issues it). */
export interface IOMMU_DMA_DEVICE extends Opaque<'IOMMU_DMA_DEVICE'> {
  readonly kind: 'IOMMU_DMA_DEVICE';
  readonly id: number;
}
export type PIOMMU_DMA_DEVICE = IOMMU_DMA_DEVICE;

/** A reserved logical range (ReserveLogicalAddressRange issues it); its two fields are public, as in Windows. */
export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN extends Opaque<'IOMMU_DMA_LOGICAL_ADDRESS_TOKEN'> {
  readonly LogicalAddressBase: IOMMU_DMA_LOGICAL_ADDRESS;
  readonly Size: SIZE_T;
}
export type PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN = IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;

/** What MapReservedLogicalRange mapped: the segment UnmapReservedLogicalRange takes. */
export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  OwningToken: PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  Offset: SIZE_T;
  Size: SIZE_T;
}
export type PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT = IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;

/** All bits reserved: AsUlonglong must be 0. */
export interface IOMMU_DMA_DOMAIN_CREATION_FLAGS {
  AsUlonglong: ULONGLONG;
}

/** The allocator CreateDomainEx builds for a Translate domain: none (explicit addresses) or buddy. */
export type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG =
  | { LogicalAllocatorType: typeof IommuDmaLogicalAllocatorNone }
  | { LogicalAllocatorType: typeof IommuDmaLogicalAllocatorBuddy; BuddyAllocatorConfig: { AddressWidth: ULONG } };
export type PIOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG = IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG;

/** A region CreateDomainEx reserves (and identity maps when ShouldMap); RegionNext chains them. */
export interface IOMMU_DMA_RESERVED_REGION {
  RegionNext?: Opt<IOMMU_DMA_RESERVED_REGION>;
  Base: IOMMU_DMA_LOGICAL_ADDRESS;
  NumberOfPages: SIZE_T;
  ShouldMap: BOOLEAN;
}
export type PIOMMU_DMA_RESERVED_REGION = IOMMU_DMA_RESERVED_REGION;

/** Physical pages to map: an MDL, a contiguous range (Size in bytes), or an array of page frame numbers. */
export type IOMMU_MAP_PHYSICAL_ADDRESS =
  | { MapType: typeof MapPhysicalAddressTypeMdl; Mdl: { Mdl: PMDL } }
  | { MapType: typeof MapPhysicalAddressTypeContiguousRange; ContiguousRange: { Base: PHYSICAL_ADDRESS; Size: SIZE_T } }
  | { MapType: typeof MapPhysicalAddressTypePfn; PfnArray: { PageFrame: readonly PFN_NUMBER[]; NumberOfPages: SIZE_T } };
export type PIOMMU_MAP_PHYSICAL_ADDRESS = IOMMU_MAP_PHYSICAL_ADDRESS;

/** Bit 0 (IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES) is AvailableDomainTypes; bits 1..31 are reserved. */
export interface IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
  AsULONG: ULONG;
}
export type PIOMMU_INTERFACE_STATE_CHANGE_FIELDS = IOMMU_INTERFACE_STATE_CHANGE_FIELDS;

/** What a state-change callback is told: which fields are present, and the device's mask of domain types (bit 1 << type). */
export interface IOMMU_INTERFACE_STATE_CHANGE {
  PresentFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS;
  AvailableDomainTypes: ULONG;
}

/** Called once during registration, then on every change of the device's available domain types. */
export type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK = (StateChange: IOMMU_INTERFACE_STATE_CHANGE, Context: PVOID) => void;

/** FAULT_INFORMATION_ARM64_FLAGS: the bits, and AsULONG with all of them. */
export interface FAULT_INFORMATION_ARM64_FLAGS {
  WriteNotRead: boolean;
  InstructionNotData: boolean;
  Privileged: boolean;
  FaultAddressValid: boolean;
  AsULONG: ULONG;
}

export interface FAULT_INFORMATION_ARM64 {
  /** The faulting device's domain, or null if it has been deleted since. */
  DomainHandle: PIOMMU_DMA_DOMAIN | null;
  FaultAddress: IOMMU_DMA_LOGICAL_ADDRESS;
  PhysicalDeviceObject: PDEVICE_OBJECT | null;
  InputMappingId: ULONG;
  Flags: FAULT_INFORMATION_ARM64_FLAGS;
  Type: FAULT_INFORMATION_ARM64_TYPE;
  IommuBaseAddress: ULONGLONG;
}

export interface FAULT_INFORMATION_X64_FLAGS {
  FaultAddressValid: boolean;
  AsULONG: ULONG;
}

export interface FAULT_INFORMATION_X64 {
  DomainHandle: PIOMMU_DMA_DOMAIN | null;
  FaultAddress: IOMMU_DMA_LOGICAL_ADDRESS;
  Flags: FAULT_INFORMATION_X64_FLAGS;
  Type: FAULT_INFORMATION_X64_TYPE;
  IommuBaseAddress: ULONGLONG;
  PciSegment: ULONG;
}

/**
 * What a FaultHandler receives: the ARM64 variant (Type FaultInformationArm64) on arm64
 * platforms, the X64 variant on x64. The other variant's field is absent, so
 * `info.Arm64?.FaultAddress` reads as it would in C after checking Type.
 */
export type FAULT_INFORMATION =
  | { Type: typeof FaultInformationArm64; IsStage1: BOOLEAN; Arm64: FAULT_INFORMATION_ARM64; X64?: undefined }
  | { Type: typeof FaultInformationX64; IsStage1: BOOLEAN; X64: FAULT_INFORMATION_X64; Arm64?: undefined };
export type PFAULT_INFORMATION = FAULT_INFORMATION;

/** Runs on the main thread for each fault of a device whose fault reporting is enabled. */
export type IOMMU_DEVICE_FAULT_HANDLER = (Context: PVOID, FaultInformation: FAULT_INFORMATION) => void;

export interface DEVICE_FAULT_CONFIGURATION {
  FaultHandler: IOMMU_DEVICE_FAULT_HANDLER;
  /** Handed to FaultHandler as its Context (undefined when not given). */
  FaultContext?: PVOID;
}
export type PDEVICE_FAULT_CONFIGURATION = DEVICE_FAULT_CONFIGURATION;

/** The guest's own ARM64 stage-1 tables for an Unmanaged domain (the fields ConfigureDomain reads are required). */
export interface DOMAIN_CONFIGURATION_ARM64 {
  Ttbr0: PHYSICAL_ADDRESS;
  Ttbr1?: PHYSICAL_ADDRESS;
  Mair0?: ULONG;
  Mair1?: ULONG;
  InputSize0: UCHAR;
  InputSize1?: UCHAR;
  CoherentTableWalks?: BOOLEAN;
  TranslationEnabled: BOOLEAN;
}

/** Reserved for system use: ConfigureDomain answers STATUS_NOT_SUPPORTED. */
export interface DOMAIN_CONFIGURATION_X64 {
  FirstLevelPageTableRoot: PHYSICAL_ADDRESS;
  TranslationEnabled: BOOLEAN;
}

export type DOMAIN_CONFIGURATION =
  | { Type: typeof DomainConfigurationArm64; Arm64: DOMAIN_CONFIGURATION_ARM64 }
  | { Type: typeof DomainConfigurationX64; X64: DOMAIN_CONFIGURATION_X64 };
export type PDOMAIN_CONFIGURATION = DOMAIN_CONFIGURATION;

export interface IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI {
  InputMappingBase: ULONG;
  MappingsCount: ULONG;
}

/**
 * A creation configuration for CreateDevice, chained by NextConfiguration. Windows takes
 * them for ACPI-enumerated devices only; a PCI function takes none (STATUS_INVALID_PARAMETER_2).
 */
export type IOMMU_DEVICE_CREATION_CONFIGURATION = { NextConfiguration?: Opt<IOMMU_DEVICE_CREATION_CONFIGURATION> } & (
  | { ConfigType: typeof IommuDeviceCreationConfigTypeNone }
  | { ConfigType: typeof IommuDeviceCreationConfigTypeAcpi; Acpi: IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI }
  | { ConfigType: typeof IommuDeviceCreationConfigTypeDeviceId; DeviceId: PVOID }
);
export type PIOMMU_DEVICE_CREATION_CONFIGURATION = IOMMU_DEVICE_CREATION_CONFIGURATION;

/** One input mapping ID (an SMMU stream ID) in QueryInputMappings' buffer (4 bytes each). */
export interface INPUT_MAPPING_ELEMENT {
  InputMappingId: ULONG;
}
export type PINPUT_MAPPING_ELEMENT = INPUT_MAPPING_ELEMENT;
