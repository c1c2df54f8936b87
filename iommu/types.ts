/**
 * The V2 structures as plain objects whose keys are the Windows field names.
 * Addresses, sizes and page frame numbers are JavaScript numbers (safe integers).
 */
import type { MDL } from '../hardware/substrate.js';

export type { MDL };

/** An `_Out_` parameter: filled on success, left untouched on failure. */
export interface Out<T> {
  value?: T;
}

/** An `_In_opt_` pointer. */
export type Opt<T> = T | null | undefined;

/** Opaque handles. They are frozen objects; only the objects the plugin issued are accepted. */
export interface IOMMU_DMA_DOMAIN {
  readonly kind: 'IOMMU_DMA_DOMAIN';
  readonly id: number;
}
export type PIOMMU_DMA_DOMAIN = IOMMU_DMA_DOMAIN;

export interface IOMMU_DMA_DEVICE {
  readonly kind: 'IOMMU_DMA_DEVICE';
  readonly id: number;
}
export type PIOMMU_DMA_DEVICE = IOMMU_DMA_DEVICE;

export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
  readonly LogicalAddressBase: number;
  readonly Size: number;
}
export type PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN = IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;

export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  OwningToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  Offset: number;
  Size: number;
}

export interface IOMMU_DMA_DOMAIN_CREATION_FLAGS {
  AsUlonglong: number;
}

export interface IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
  LogicalAllocatorType: number;
  BuddyAllocatorConfig?: { AddressWidth: number };
}

export interface IOMMU_DMA_RESERVED_REGION {
  RegionNext?: IOMMU_DMA_RESERVED_REGION | null;
  Base: number;
  NumberOfPages: number;
  ShouldMap: boolean;
}

export interface IOMMU_MAP_PHYSICAL_ADDRESS {
  MapType: number;
  Mdl?: { Mdl: MDL };
  ContiguousRange?: { Base: number; Size: number };
  PfnArray?: { PageFrame: readonly number[]; NumberOfPages: number };
}

export interface IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
  AsULONG: number;
}

export interface IOMMU_INTERFACE_STATE_CHANGE {
  PresentFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS;
  AvailableDomainTypes: number;
}

export type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK = (StateChange: IOMMU_INTERFACE_STATE_CHANGE, Context: unknown) => void;

export interface FAULT_INFORMATION_ARM64_FLAGS {
  WriteNotRead: boolean;
  InstructionNotData: boolean;
  Privileged: boolean;
  FaultAddressValid: boolean;
  AsULONG: number;
}

export interface FAULT_INFORMATION_ARM64 {
  DomainHandle: IOMMU_DMA_DOMAIN | null;
  FaultAddress: number;
  PhysicalDeviceObject: unknown;
  InputMappingId: number;
  Flags: FAULT_INFORMATION_ARM64_FLAGS;
  Type: number;
  IommuBaseAddress: number;
}

export interface FAULT_INFORMATION_X64_FLAGS {
  FaultAddressValid: boolean;
  AsULONG: number;
}

export interface FAULT_INFORMATION_X64 {
  DomainHandle: IOMMU_DMA_DOMAIN | null;
  FaultAddress: number;
  Flags: FAULT_INFORMATION_X64_FLAGS;
  Type: number;
  IommuBaseAddress: number;
  PciSegment: number;
}

export interface FAULT_INFORMATION {
  Type: number;
  IsStage1: boolean;
  Arm64?: FAULT_INFORMATION_ARM64;
  X64?: FAULT_INFORMATION_X64;
}

export type IOMMU_DEVICE_FAULT_HANDLER = (Context: unknown, FaultInformation: FAULT_INFORMATION) => void;

export interface DEVICE_FAULT_CONFIGURATION {
  FaultHandler: IOMMU_DEVICE_FAULT_HANDLER;
  FaultContext?: unknown;
}

export interface DOMAIN_CONFIGURATION_ARM64 {
  Ttbr0: number;
  Ttbr1?: number;
  Mair0?: number;
  Mair1?: number;
  InputSize0: number;
  InputSize1?: number;
  CoherentTableWalks?: boolean;
  TranslationEnabled: boolean;
}

export interface DOMAIN_CONFIGURATION_X64 {
  FirstLevelPageTableRoot: number;
  TranslationEnabled: boolean;
}

export interface DOMAIN_CONFIGURATION {
  Type: number;
  Arm64?: DOMAIN_CONFIGURATION_ARM64;
  X64?: DOMAIN_CONFIGURATION_X64;
}

export interface IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI {
  InputMappingBase: number;
  MappingsCount: number;
}

export interface IOMMU_DEVICE_CREATION_CONFIGURATION {
  NextConfiguration?: IOMMU_DEVICE_CREATION_CONFIGURATION | null;
  ConfigType: number;
  Acpi?: IOMMU_DEVICE_CREATION_CONFIGURATION_ACPI;
  DeviceId?: unknown;
}

export interface INPUT_MAPPING_ELEMENT {
  InputMappingId: number;
}
