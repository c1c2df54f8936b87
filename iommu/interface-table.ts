import type { IommuCore } from './control/iommu-core.js';
import { DMA_IOMMU_INTERFACE_EX_SIZE, DMA_IOMMU_INTERFACE_EX_VERSION_2 } from '../base/enums.js';
import { STATUS_INVALID_PARAMETER_2, STATUS_INVALID_PARAMETER_3, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, type NTSTATUS } from '../base/ntstatus.js';
import { AttachDeviceEx, CreateDevice, DeleteDevice, DetachDeviceEx, QueryAvailableDomainTypes } from './routines/devices.js';
import { CreateDomainEx, DeleteDomain } from './routines/domains.js';
import { MapIdentityRangeEx, UnmapIdentityRangeEx } from './routines/identity-mappings.js';
import { MapLogicalRangeEx, UnmapLogicalRange } from './routines/logical-mappings.js';
import { isOut } from './routines/parameters.js';
import { refusingCallerThrows } from './routines/caller-throws.js';
import { ConfigureDomain } from './routines/configure-domain.js';
import { SetDeviceFaultReportingEx } from './routines/fault-reporting.js';
import { FlushDomain, FlushDomainByVaList } from './routines/flush.js';
import { QueryInputMappings } from './routines/input-mappings.js';
import { FreeReservedLogicalAddressRange, MapReservedLogicalRange, ReserveLogicalAddressRange, UnmapReservedLogicalRange } from './routines/reserved-ranges.js';
import { RegisterInterfaceStateChangeCallback, UnregisterInterfaceStateChangeCallback } from './routines/state-change.js';
import type { IOMMU_DMA_DOMAIN_TYPE } from '../base/enums.js';
import type {
  BOOLEAN,
  DEVICE_FAULT_CONFIGURATION,
  DOMAIN_CONFIGURATION,
  INPUT_MAPPING_ELEMENT,
  IOMMU_DEVICE_CREATION_CONFIGURATION,
  IOMMU_DMA_DOMAIN_CREATION_FLAGS,
  IOMMU_DMA_LOGICAL_ADDRESS,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  IOMMU_DMA_RESERVED_REGION,
  IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  IOMMU_MAP_PHYSICAL_ADDRESS,
  Opt,
  Out,
  PDEVICE_OBJECT,
  PIOMMU_DMA_DEVICE,
  PIOMMU_DMA_DOMAIN,
  PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  PVOID,
  SIZE_T,
  ULONG,
  ULONGLONG,
} from './types.js';

/** The 22 routine names of DMA_IOMMU_INTERFACE_V2, in the order of the structure in wdm.h. */
export const V2_ROUTINE_NAMES = Object.freeze([
  'CreateDomainEx',
  'DeleteDomain',
  'AttachDeviceEx',
  'DetachDeviceEx',
  'FlushDomain',
  'FlushDomainByVaList',
  'QueryInputMappings',
  'MapLogicalRangeEx',
  'UnmapLogicalRange',
  'MapIdentityRangeEx',
  'UnmapIdentityRangeEx',
  'SetDeviceFaultReportingEx',
  'ConfigureDomain',
  'QueryAvailableDomainTypes',
  'RegisterInterfaceStateChangeCallback',
  'UnregisterInterfaceStateChangeCallback',
  'ReserveLogicalAddressRange',
  'FreeReservedLogicalAddressRange',
  'MapReservedLogicalRange',
  'UnmapReservedLogicalRange',
  'CreateDevice',
  'DeleteDevice',
] as const);

export type V2RoutineName = (typeof V2_ROUTINE_NAMES)[number];

// The routine types, named as wdm.h names them, with the Windows parameters in the Windows
// order. `_In_opt_` pointers are Opt<T> (null when absent), `_Out_` pointers are Out<T>.
// The types are the contract for TypeScript callers; JavaScript callers that pass anything
// else get the routine's STATUS_INVALID_PARAMETER_N, never an exception.

/** CreateDomainEx: a domain of DomainType, with an optional allocator and reserved regions. */
export type IOMMU_DOMAIN_CREATE_EX = (
  DomainType: IOMMU_DMA_DOMAIN_TYPE,
  Flags: IOMMU_DMA_DOMAIN_CREATION_FLAGS,
  LogicalAllocatorConfig: Opt<IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG>,
  ReservedRegions: Opt<IOMMU_DMA_RESERVED_REGION>,
  DomainOut: Out<PIOMMU_DMA_DOMAIN>,
) => NTSTATUS;
/** DeleteDomain: only a domain without devices and tokens. */
export type IOMMU_DOMAIN_DELETE = (Domain: PIOMMU_DMA_DOMAIN) => NTSTATUS;
/** AttachDeviceEx: the device's DMA goes through Domain from now on. */
export type IOMMU_DOMAIN_ATTACH_DEVICE_EX = (Domain: PIOMMU_DMA_DOMAIN, DmaDevice: PIOMMU_DMA_DEVICE) => NTSTATUS;
/** DetachDeviceEx: the device leaves its domain (its DMA is blocked). */
export type IOMMU_DOMAIN_DETACH_DEVICE_EX = (DmaDevice: PIOMMU_DMA_DEVICE) => NTSTATUS;
/** FlushDomain: every cached translation of an Unmanaged domain dies. */
export type IOMMU_FLUSH_DOMAIN = (Domain: PIOMMU_DMA_DOMAIN) => NTSTATUS;
/** FlushDomainByVaList: the cached translations of `Number` listed logical addresses die. */
export type IOMMU_FLUSH_DOMAIN_VA_LIST = (
  Domain: PIOMMU_DMA_DOMAIN,
  LastLevel: BOOLEAN,
  // biome-ignore lint/suspicious/noShadowRestrictedNames: Windows names this parameter Number.
  Number: ULONG,
  VaList: readonly IOMMU_DMA_LOGICAL_ADDRESS[],
) => NTSTATUS;
/** QueryInputMappings (ARM64): the PDO's input mapping IDs; lengths in bytes, 4 per element. */
export type IOMMU_QUERY_INPUT_MAPPINGS = (
  PhysicalDeviceObject: PDEVICE_OBJECT,
  Buffer: INPUT_MAPPING_ELEMENT[] | Uint32Array,
  BufferLength: ULONG,
  ReturnLength?: Opt<Out<ULONG>>,
) => NTSTATUS;
/** MapLogicalRangeEx: maps physical pages at a logical address the domain's allocator picks (or ExplicitLogicalAddress). */
export type IOMMU_MAP_LOGICAL_RANGE_EX = (
  Domain: PIOMMU_DMA_DOMAIN,
  Permissions: ULONG,
  PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ExplicitLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  MinLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  MaxLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  LogicalAddressOut: Out<IOMMU_DMA_LOGICAL_ADDRESS>,
) => NTSTATUS;
/** UnmapLogicalRange: unmaps pages mapped by MapLogicalRangeEx. */
export type IOMMU_UNMAP_LOGICAL_RANGE = (Domain: PIOMMU_DMA_DOMAIN, LogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS, NumberOfPages: ULONGLONG) => NTSTATUS;
/** MapIdentityRangeEx: maps each physical page at its own address. */
export type IOMMU_MAP_IDENTITY_RANGE_EX = (Domain: PIOMMU_DMA_DOMAIN, Permissions: ULONG, PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS) => NTSTATUS;
/** UnmapIdentityRangeEx: removes identity mappings. */
export type IOMMU_UNMAP_IDENTITY_RANGE_EX = (Domain: PIOMMU_DMA_DOMAIN, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS) => NTSTATUS;
/** SetDeviceFaultReportingEx: FaultConfig.FaultHandler hears of the device's faults while enabled. */
export type IOMMU_SET_DEVICE_FAULT_REPORTING_EX = (
  DmaDevice: PIOMMU_DMA_DEVICE,
  InputMappingIdBase: ULONG,
  Enable: BOOLEAN,
  FaultConfig?: Opt<DEVICE_FAULT_CONFIGURATION>,
) => NTSTATUS;
/** ConfigureDomain: installs the guest's own stage-1 tables in an Unmanaged domain. */
export type IOMMU_DOMAIN_CONFIGURE = (Domain: PIOMMU_DMA_DOMAIN, Configuration: DOMAIN_CONFIGURATION) => NTSTATUS;
/** QueryAvailableDomainTypes: the device's mask of domain types (bit 1 << type); returns nothing, as in Windows. */
export type IOMMU_DEVICE_QUERY_DOMAIN_TYPES = (DmaDevice: PIOMMU_DMA_DEVICE, AvailableDomains: Out<ULONG>) => void;
/** RegisterInterfaceStateChangeCallback: one callback per device, called at once and on every change. */
export type IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK = (
  StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  Context: PVOID,
  DmaDevice: PIOMMU_DMA_DEVICE,
  StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
) => NTSTATUS;
/** UnregisterInterfaceStateChangeCallback: no call starts after it returns. */
export type IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK = (
  StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  DmaDevice: PIOMMU_DMA_DEVICE,
) => NTSTATUS;
/** ReserveLogicalAddressRange: logical space and every page table it needs, for mapping without allocating. */
export type IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE = (
  Domain: PIOMMU_DMA_DOMAIN,
  Size: SIZE_T,
  ExplicitLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  MinLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  MaxLogicalAddress: Opt<IOMMU_DMA_LOGICAL_ADDRESS>,
  LogicalAddressToken: Out<PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN>,
) => NTSTATUS;
/** FreeReservedLogicalAddressRange: only a token with nothing mapped. */
export type IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE = (LogicalAddressToken: PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN) => NTSTATUS;
/** MapReservedLogicalRange: maps physical pages at token base + Offset, never allocating. */
export type IOMMU_MAP_RESERVED_LOGICAL_RANGE = (
  LogicalAddressToken: PIOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  Offset: SIZE_T,
  Permissions: ULONG,
  PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  MappedSegment: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>,
) => NTSTATUS;
/** UnmapReservedLogicalRange: unmaps exactly a segment MapReservedLogicalRange mapped. */
export type IOMMU_UNMAP_RESERVED_LOGICAL_RANGE = (MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT) => NTSTATUS;
/** CreateDevice: the DMA device of a PDO (one per PDO). */
export type IOMMU_DEVICE_CREATE = (
  DeviceObject: PDEVICE_OBJECT,
  DeviceConfig: Opt<IOMMU_DEVICE_CREATION_CONFIGURATION>,
  DmaDeviceOut: Out<PIOMMU_DMA_DEVICE>,
) => NTSTATUS;
/** DeleteDevice: only a detached device without a state-change callback. */
export type IOMMU_DEVICE_DELETE = (DmaDevice: PIOMMU_DMA_DEVICE) => NTSTATUS;

/**
 * DMA_IOMMU_INTERFACE_V2: the 22 routines, in the order of the structure in wdm.h. Every
 * routine works detached from the table (`const { MapLogicalRangeEx } = V2`).
 */
export interface DMA_IOMMU_INTERFACE_V2 {
  readonly CreateDomainEx: IOMMU_DOMAIN_CREATE_EX;
  readonly DeleteDomain: IOMMU_DOMAIN_DELETE;
  readonly AttachDeviceEx: IOMMU_DOMAIN_ATTACH_DEVICE_EX;
  readonly DetachDeviceEx: IOMMU_DOMAIN_DETACH_DEVICE_EX;
  readonly FlushDomain: IOMMU_FLUSH_DOMAIN;
  readonly FlushDomainByVaList: IOMMU_FLUSH_DOMAIN_VA_LIST;
  readonly QueryInputMappings: IOMMU_QUERY_INPUT_MAPPINGS;
  readonly MapLogicalRangeEx: IOMMU_MAP_LOGICAL_RANGE_EX;
  readonly UnmapLogicalRange: IOMMU_UNMAP_LOGICAL_RANGE;
  readonly MapIdentityRangeEx: IOMMU_MAP_IDENTITY_RANGE_EX;
  readonly UnmapIdentityRangeEx: IOMMU_UNMAP_IDENTITY_RANGE_EX;
  readonly SetDeviceFaultReportingEx: IOMMU_SET_DEVICE_FAULT_REPORTING_EX;
  readonly ConfigureDomain: IOMMU_DOMAIN_CONFIGURE;
  readonly QueryAvailableDomainTypes: IOMMU_DEVICE_QUERY_DOMAIN_TYPES;
  readonly RegisterInterfaceStateChangeCallback: IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK;
  readonly UnregisterInterfaceStateChangeCallback: IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK;
  readonly ReserveLogicalAddressRange: IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE;
  readonly FreeReservedLogicalAddressRange: IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE;
  readonly MapReservedLogicalRange: IOMMU_MAP_RESERVED_LOGICAL_RANGE;
  readonly UnmapReservedLogicalRange: IOMMU_UNMAP_RESERVED_LOGICAL_RANGE;
  readonly CreateDevice: IOMMU_DEVICE_CREATE;
  readonly DeleteDevice: IOMMU_DEVICE_DELETE;
}

/** DMA_IOMMU_INTERFACE_EX as IoGetIommuInterfaceEx(2, …) fills it: Size 0xC0, Version 2, the V2 table. */
export interface DMA_IOMMU_INTERFACE_EX {
  Size: ULONG;
  Version: ULONG;
  V2: DMA_IOMMU_INTERFACE_V2;
}

/** Builds the V2 table bound to `core`. Every routine works detached from the table. */
export function buildInterfaceV2(core: IommuCore): DMA_IOMMU_INTERFACE_V2 {
  // The routines themselves take `unknown` for what a JavaScript caller may pass: they check
  // every argument and answer with a status.
  const table: DMA_IOMMU_INTERFACE_V2 = {
    CreateDomainEx: (DomainType, Flags, LogicalAllocatorConfig, ReservedRegions, DomainOut) =>
      CreateDomainEx(core, DomainType, Flags, LogicalAllocatorConfig, ReservedRegions, DomainOut),
    DeleteDomain: (Domain) => DeleteDomain(core, Domain),
    AttachDeviceEx: (Domain, DmaDevice) => AttachDeviceEx(core, Domain, DmaDevice),
    DetachDeviceEx: (DmaDevice) => DetachDeviceEx(core, DmaDevice),
    FlushDomain: (Domain) => FlushDomain(core, Domain),
    // biome-ignore lint/suspicious/noShadowRestrictedNames: Windows names this parameter Number.
    FlushDomainByVaList: (Domain, LastLevel, Number, VaList) => FlushDomainByVaList(core, Domain, LastLevel, Number, VaList),
    QueryInputMappings: (PhysicalDeviceObject, Buffer, BufferLength, ReturnLength) =>
      QueryInputMappings(core, PhysicalDeviceObject, Buffer, BufferLength, ReturnLength),
    MapLogicalRangeEx: (Domain, Permissions, PhysicalAddressToMap, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressOut) =>
      MapLogicalRangeEx(core, Domain, Permissions, PhysicalAddressToMap, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressOut),
    UnmapLogicalRange: (Domain, LogicalAddress, NumberOfPages) => UnmapLogicalRange(core, Domain, LogicalAddress, NumberOfPages),
    MapIdentityRangeEx: (Domain, Permissions, PhysicalAddressToMap) => MapIdentityRangeEx(core, Domain, Permissions, PhysicalAddressToMap),
    UnmapIdentityRangeEx: (Domain, MappedPhysicalAddress) => UnmapIdentityRangeEx(core, Domain, MappedPhysicalAddress),
    SetDeviceFaultReportingEx: (DmaDevice, InputMappingIdBase, Enable, FaultConfig) =>
      SetDeviceFaultReportingEx(core, DmaDevice, InputMappingIdBase, Enable, FaultConfig),
    ConfigureDomain: (Domain, Configuration) => ConfigureDomain(core, Domain, Configuration),
    QueryAvailableDomainTypes: (DmaDevice, AvailableDomains) => QueryAvailableDomainTypes(core, DmaDevice, AvailableDomains),
    RegisterInterfaceStateChangeCallback: (StateChangeCallback, Context, DmaDevice, StateFields) =>
      RegisterInterfaceStateChangeCallback(core, StateChangeCallback, Context, DmaDevice, StateFields),
    UnregisterInterfaceStateChangeCallback: (StateChangeCallback, DmaDevice) => UnregisterInterfaceStateChangeCallback(core, StateChangeCallback, DmaDevice),
    ReserveLogicalAddressRange: (Domain, Size, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressToken) =>
      ReserveLogicalAddressRange(core, Domain, Size, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressToken),
    FreeReservedLogicalAddressRange: (LogicalAddressToken) => FreeReservedLogicalAddressRange(core, LogicalAddressToken),
    MapReservedLogicalRange: (LogicalAddressToken, Offset, Permissions, PhysicalAddressToMap, MappedSegment) =>
      MapReservedLogicalRange(core, LogicalAddressToken, Offset, Permissions, PhysicalAddressToMap, MappedSegment),
    UnmapReservedLogicalRange: (MappedSegment) => UnmapReservedLogicalRange(core, MappedSegment),
    CreateDevice: (DeviceObject, DeviceConfig, DmaDeviceOut) => CreateDevice(core, DeviceObject, DeviceConfig, DmaDeviceOut),
    DeleteDevice: (DmaDevice) => DeleteDevice(core, DmaDevice),
  };
  // Caller code that throws while a routine reads its arguments becomes that argument's refusal.
  for (const name of V2_ROUTINE_NAMES) (table as unknown as Record<string, unknown>)[name] = refusingCallerThrows(name, table[name]);
  return Object.freeze(table);
}

/**
 * IoGetIommuInterfaceEx(Version, Flags, InterfaceOut): Version 2 fills
 * InterfaceOut.value = { Size: 0xC0, Version: 2, V2 }; any other version is
 * STATUS_NOT_SUPPORTED; Flags must be 0 (STATUS_INVALID_PARAMETER_2).
 */
export function getIommuInterfaceEx(v2: DMA_IOMMU_INTERFACE_V2, Version: unknown, Flags: unknown, InterfaceOut: unknown): NTSTATUS {
  if (Flags !== 0) return STATUS_INVALID_PARAMETER_2;
  if (Version !== DMA_IOMMU_INTERFACE_EX_VERSION_2) return STATUS_NOT_SUPPORTED;
  if (!isOut(InterfaceOut)) return STATUS_INVALID_PARAMETER_3;
  InterfaceOut.value = { Size: DMA_IOMMU_INTERFACE_EX_SIZE, Version: DMA_IOMMU_INTERFACE_EX_VERSION_2, V2: v2 };
  return STATUS_SUCCESS;
}
