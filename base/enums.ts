/**
 * Enumerations of the V2 interface with their Windows member names and the
 * numbering of current headers (DomainTypeTranslateS1 = 3, DomainTypeMax = 4).
 *
 * Each enum is a frozen object of its members (`IOMMU_DMA_DOMAIN_TYPE.DomainTypeTranslate`),
 * each member is also a constant of its own (`DomainTypeTranslate`), and the type of the same
 * name is the union of the members' literal values (`0 | 1 | 2 | 3 | 4`): a parameter of an
 * enum type takes a member, not any number.
 */

export const IOMMU_DMA_DOMAIN_TYPE = Object.freeze({
  DomainTypeTranslate: 0,
  DomainTypePassThrough: 1,
  DomainTypeUnmanaged: 2,
  DomainTypeTranslateS1: 3,
  DomainTypeMax: 4,
} as const);
/** IOMMU_DMA_DOMAIN_TYPE: 0 | 1 | 2 | 3 | 4. */
export type IOMMU_DMA_DOMAIN_TYPE = (typeof IOMMU_DMA_DOMAIN_TYPE)[keyof typeof IOMMU_DMA_DOMAIN_TYPE];
export const { DomainTypeTranslate, DomainTypePassThrough, DomainTypeUnmanaged, DomainTypeTranslateS1, DomainTypeMax } = IOMMU_DMA_DOMAIN_TYPE;

export const IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE = Object.freeze({
  IommuDmaLogicalAllocatorNone: 0,
  IommuDmaLogicalAllocatorBuddy: 1,
  IommuDmaLogicalAllocatorMax: 2,
} as const);
export type IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE = (typeof IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE)[keyof typeof IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE];
export const { IommuDmaLogicalAllocatorNone, IommuDmaLogicalAllocatorBuddy, IommuDmaLogicalAllocatorMax } = IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE;

export const IOMMU_MAP_PHYSICAL_ADDRESS_TYPE = Object.freeze({
  MapPhysicalAddressTypeMdl: 0,
  MapPhysicalAddressTypeContiguousRange: 1,
  MapPhysicalAddressTypePfn: 2,
  MapPhysicalAddressTypeMax: 3,
} as const);
export type IOMMU_MAP_PHYSICAL_ADDRESS_TYPE = (typeof IOMMU_MAP_PHYSICAL_ADDRESS_TYPE)[keyof typeof IOMMU_MAP_PHYSICAL_ADDRESS_TYPE];
export const { MapPhysicalAddressTypeMdl, MapPhysicalAddressTypeContiguousRange, MapPhysicalAddressTypePfn, MapPhysicalAddressTypeMax } =
  IOMMU_MAP_PHYSICAL_ADDRESS_TYPE;

export const DOMAIN_CONFIGURATION_ARCH = Object.freeze({
  DomainConfigurationArm64: 0,
  DomainConfigurationX64: 1,
  DomainConfigurationInvalid: 2,
} as const);
export type DOMAIN_CONFIGURATION_ARCH = (typeof DOMAIN_CONFIGURATION_ARCH)[keyof typeof DOMAIN_CONFIGURATION_ARCH];
export const { DomainConfigurationArm64, DomainConfigurationX64, DomainConfigurationInvalid } = DOMAIN_CONFIGURATION_ARCH;

/** Note the order differs from DOMAIN_CONFIGURATION_ARCH, as in wdm.h. */
export const FAULT_INFORMATION_ARCH = Object.freeze({
  FaultInformationInvalid: 0,
  FaultInformationArm64: 1,
  FaultInformationX64: 2,
} as const);
export type FAULT_INFORMATION_ARCH = (typeof FAULT_INFORMATION_ARCH)[keyof typeof FAULT_INFORMATION_ARCH];
export const { FaultInformationInvalid, FaultInformationArm64, FaultInformationX64 } = FAULT_INFORMATION_ARCH;

/** FAULT_INFORMATION_ARM64_TYPE; FAULT_INFORMATION_X64_TYPE is the same enum. */
export const FAULT_INFORMATION_ARM64_TYPE = Object.freeze({
  UnsupportedUpstreamTransaction: 0,
  AddressSizeFault: 1,
  TlbMatchConflict: 2,
  ExternalFault: 3,
  PermissionFault: 4,
  AccessFlagFault: 5,
  TranslationFault: 6,
  MaxFaultType: 7,
} as const);
/** FAULT_INFORMATION_ARM64_TYPE: 0 .. 7. */
export type FAULT_INFORMATION_ARM64_TYPE = (typeof FAULT_INFORMATION_ARM64_TYPE)[keyof typeof FAULT_INFORMATION_ARM64_TYPE];
/** wdm.h: `typedef FAULT_INFORMATION_ARM64_TYPE FAULT_INFORMATION_X64_TYPE`. */
export type FAULT_INFORMATION_X64_TYPE = FAULT_INFORMATION_ARM64_TYPE;
export const {
  UnsupportedUpstreamTransaction,
  AddressSizeFault,
  TlbMatchConflict,
  ExternalFault,
  PermissionFault,
  AccessFlagFault,
  TranslationFault,
  MaxFaultType,
} = FAULT_INFORMATION_ARM64_TYPE;

const faultTypeNames = Object.keys(FAULT_INFORMATION_ARM64_TYPE);
/** `TranslationFault` for 6: for summaries and messages. */
export function faultTypeName(type: number): string {
  return faultTypeNames[type] ?? `FaultType(${type})`;
}

export const IOMMU_ACCESS_NONE = 0x00;
export const IOMMU_ACCESS_READ = 0x01;
export const IOMMU_ACCESS_WRITE = 0x02;
/** Permission bits 31..2 are reserved and must be zero. */
export const IOMMU_ACCESS_RESERVED_MASK = ~(IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE) >>> 0;

export const IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE = Object.freeze({
  IommuDeviceCreationConfigTypeNone: 0,
  IommuDeviceCreationConfigTypeAcpi: 1,
  IommuDeviceCreationConfigTypeDeviceId: 2,
  IommuDeviceCreationConfigTypeMax: 3,
} as const);
export type IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE = (typeof IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE)[keyof typeof IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE];
export const { IommuDeviceCreationConfigTypeNone, IommuDeviceCreationConfigTypeAcpi, IommuDeviceCreationConfigTypeDeviceId, IommuDeviceCreationConfigTypeMax } =
  IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE;

export const DMA_IOMMU_INTERFACE_EX_VERSION_1 = 1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_2 = 2;
/** sizeof(DMA_IOMMU_INTERFACE_EX) with the V2 table on a 64-bit OS. */
export const DMA_IOMMU_INTERFACE_EX_SIZE = 0xc0;
/** Bit 0 of IOMMU_INTERFACE_STATE_CHANGE_FIELDS. */
export const IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES = 0x1;
/** sizeof(INPUT_MAPPING_ELEMENT). */
export const INPUT_MAPPING_ELEMENT_SIZE = 4;
