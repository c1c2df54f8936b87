import type { IommuCore } from './control/iommu-core.js';
import { DMA_IOMMU_INTERFACE_EX_SIZE, DMA_IOMMU_INTERFACE_EX_VERSION_2 } from '../base/enums.js';
import { STATUS_INVALID_PARAMETER_2, STATUS_INVALID_PARAMETER_3, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, type NTSTATUS } from '../base/ntstatus.js';
import { AttachDeviceEx, CreateDevice, DeleteDevice, DetachDeviceEx, QueryAvailableDomainTypes } from './routines/devices.js';
import { CreateDomainEx, DeleteDomain } from './routines/domains.js';
import { MapIdentityRangeEx, UnmapIdentityRangeEx } from './routines/identity-mappings.js';
import { MapLogicalRangeEx, UnmapLogicalRange } from './routines/logical-mappings.js';
import { isOut } from './routines/parameters.js';
import { ConfigureDomain } from './routines/configure-domain.js';
import { SetDeviceFaultReportingEx } from './routines/fault-reporting.js';
import { FlushDomain, FlushDomainByVaList } from './routines/flush.js';
import { QueryInputMappings } from './routines/input-mappings.js';
import { FreeReservedLogicalAddressRange, MapReservedLogicalRange, ReserveLogicalAddressRange, UnmapReservedLogicalRange } from './routines/reserved-ranges.js';
import { RegisterInterfaceStateChangeCallback, UnregisterInterfaceStateChangeCallback } from './routines/state-change.js';
import type { Out } from './types.js';

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
// Each routine takes the Windows parameters in the Windows order.
// biome-ignore lint/suspicious/noExplicitAny: typed per routine in a later change.
export type DMA_IOMMU_INTERFACE_V2 = { readonly [Name in V2RoutineName]: (...args: any[]) => any };

export interface DMA_IOMMU_INTERFACE_EX {
  Size: number;
  Version: number;
  V2: DMA_IOMMU_INTERFACE_V2;
}

/** Builds the V2 table bound to `core`. Every routine works detached from the table. */
export function buildInterfaceV2(core: IommuCore): DMA_IOMMU_INTERFACE_V2 {
  const table = {
    CreateDomainEx: (DomainType: unknown, Flags: unknown, LogicalAllocatorConfig: unknown, ReservedRegions: unknown, DomainOut: Out<never>) =>
      CreateDomainEx(core, DomainType, Flags, LogicalAllocatorConfig, ReservedRegions, DomainOut),
    DeleteDomain: (Domain: unknown) => DeleteDomain(core, Domain),
    AttachDeviceEx: (Domain: unknown, DmaDevice: unknown) => AttachDeviceEx(core, Domain, DmaDevice),
    DetachDeviceEx: (DmaDevice: unknown) => DetachDeviceEx(core, DmaDevice),
    FlushDomain: (Domain: unknown) => FlushDomain(core, Domain),
    // biome-ignore lint/suspicious/noShadowRestrictedNames: Windows names this parameter Number.
    FlushDomainByVaList: (Domain: unknown, LastLevel: unknown, Number: unknown, VaList: unknown) =>
      FlushDomainByVaList(core, Domain, LastLevel, Number, VaList),
    QueryInputMappings: (PhysicalDeviceObject: unknown, Buffer: unknown, BufferLength: unknown, ReturnLength?: Out<number> | null) =>
      QueryInputMappings(core, PhysicalDeviceObject, Buffer, BufferLength, ReturnLength),
    MapLogicalRangeEx: (
      Domain: unknown,
      Permissions: unknown,
      PhysicalAddressToMap: unknown,
      ExplicitLogicalAddress: unknown,
      MinLogicalAddress: unknown,
      MaxLogicalAddress: unknown,
      LogicalAddressOut: Out<number>,
    ) => MapLogicalRangeEx(core, Domain, Permissions, PhysicalAddressToMap, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressOut),
    UnmapLogicalRange: (Domain: unknown, LogicalAddress: unknown, NumberOfPages: unknown) => UnmapLogicalRange(core, Domain, LogicalAddress, NumberOfPages),
    MapIdentityRangeEx: (Domain: unknown, Permissions: unknown, PhysicalAddressToMap: unknown) =>
      MapIdentityRangeEx(core, Domain, Permissions, PhysicalAddressToMap),
    UnmapIdentityRangeEx: (Domain: unknown, MappedPhysicalAddress: unknown) => UnmapIdentityRangeEx(core, Domain, MappedPhysicalAddress),
    SetDeviceFaultReportingEx: (DmaDevice: unknown, InputMappingIdBase: unknown, Enable: unknown, FaultConfig?: unknown) =>
      SetDeviceFaultReportingEx(core, DmaDevice, InputMappingIdBase, Enable, FaultConfig),
    ConfigureDomain: (Domain: unknown, Configuration: unknown) => ConfigureDomain(core, Domain, Configuration),
    QueryAvailableDomainTypes: (DmaDevice: unknown, AvailableDomains: Out<number>) => QueryAvailableDomainTypes(core, DmaDevice, AvailableDomains),
    RegisterInterfaceStateChangeCallback: (StateChangeCallback: unknown, Context: unknown, DmaDevice: unknown, StateFields: unknown) =>
      RegisterInterfaceStateChangeCallback(core, StateChangeCallback, Context, DmaDevice, StateFields),
    UnregisterInterfaceStateChangeCallback: (StateChangeCallback: unknown, DmaDevice: unknown) =>
      UnregisterInterfaceStateChangeCallback(core, StateChangeCallback, DmaDevice),
    ReserveLogicalAddressRange: (
      Domain: unknown,
      Size: unknown,
      ExplicitLogicalAddress: unknown,
      MinLogicalAddress: unknown,
      MaxLogicalAddress: unknown,
      LogicalAddressToken: Out<never>,
    ) => ReserveLogicalAddressRange(core, Domain, Size, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress, LogicalAddressToken),
    FreeReservedLogicalAddressRange: (LogicalAddressToken: unknown) => FreeReservedLogicalAddressRange(core, LogicalAddressToken),
    MapReservedLogicalRange: (LogicalAddressToken: unknown, Offset: unknown, Permissions: unknown, PhysicalAddressToMap: unknown, MappedSegment: Out<never>) =>
      MapReservedLogicalRange(core, LogicalAddressToken, Offset, Permissions, PhysicalAddressToMap, MappedSegment),
    UnmapReservedLogicalRange: (MappedSegment: unknown) => UnmapReservedLogicalRange(core, MappedSegment),
    CreateDevice: (DeviceObject: unknown, DeviceConfig: unknown, DmaDeviceOut: Out<never>) => CreateDevice(core, DeviceObject, DeviceConfig, DmaDeviceOut),
    DeleteDevice: (DmaDevice: unknown) => DeleteDevice(core, DmaDevice),
  } satisfies DMA_IOMMU_INTERFACE_V2;
  return Object.freeze(table);
}

/**
 * IoGetIommuInterfaceEx(Version, Flags, InterfaceOut): Version 2 fills
 * InterfaceOut.value = { Size: 0xC0, Version: 2, V2 }; any other version is
 * STATUS_NOT_SUPPORTED; Flags must be 0 (STATUS_INVALID_PARAMETER_2).
 */
export function getIommuInterfaceEx(v2: DMA_IOMMU_INTERFACE_V2, Version: unknown, Flags: unknown, InterfaceOut: Out<DMA_IOMMU_INTERFACE_EX>): NTSTATUS {
  if (Flags !== 0) return STATUS_INVALID_PARAMETER_2;
  if (Version !== DMA_IOMMU_INTERFACE_EX_VERSION_2) return STATUS_NOT_SUPPORTED;
  if (!isOut(InterfaceOut)) return STATUS_INVALID_PARAMETER_3;
  InterfaceOut.value = { Size: DMA_IOMMU_INTERFACE_EX_SIZE, Version: DMA_IOMMU_INTERFACE_EX_VERSION_2, V2: v2 };
  return STATUS_SUCCESS;
}
