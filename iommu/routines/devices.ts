import { DmaDeviceState } from '../control/handle-state.js';
import { mintHandle } from '../control/handles.js';
import type { IommuCore } from '../control/iommu-core.js';
import {
  STATUS_ACCESS_DENIED,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_NOT_FOUND,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import type { IOMMU_DMA_DEVICE, Out } from '../types.js';
import { isAbsent, isOut } from './parameters.js';

/** IOMMU_DEVICE_CREATE. */
export function CreateDevice(core: IommuCore, DeviceObject: unknown, DeviceConfig: unknown, DmaDeviceOut: Out<IOMMU_DMA_DEVICE>): NTSTATUS {
  if (!core.bus.owns(DeviceObject)) return STATUS_INVALID_PARAMETER_1;
  if (!DeviceObject.behindIommu) return STATUS_NOT_FOUND;
  // Creation configurations are for ACPI-enumerated devices; a PCI function takes none.
  if (!isAbsent(DeviceConfig)) return STATUS_INVALID_PARAMETER_2;
  if (!isOut(DmaDeviceOut)) return STATUS_INVALID_PARAMETER_3;
  if (core.deviceOfFunction.has(DeviceObject)) return STATUS_INVALID_PARAMETER;
  const handle = mintHandle<IOMMU_DMA_DEVICE>({ kind: 'IOMMU_DMA_DEVICE', id: core.nextHandleId() });
  const device = new DmaDeviceState(handle, DeviceObject);
  core.deviceOfFunction.set(DeviceObject, device);
  DmaDeviceOut.value = core.devices.issue(handle, device);
  return STATUS_SUCCESS;
}

/** IOMMU_DEVICE_DELETE. */
export function DeleteDevice(core: IommuCore, DmaDevice: unknown): NTSTATUS {
  const device = core.devices.get(DmaDevice);
  if (device === undefined) return STATUS_INVALID_PARAMETER_1;
  if (device.domain !== null || device.registration !== null) return STATUS_RESOURCE_IN_USE;
  if (device.faultConfig !== null) core.setFaultReporting(device.pdo, false);
  core.deviceOfFunction.delete(device.pdo);
  core.devices.revoke(device.handle);
  return STATUS_SUCCESS;
}

/** IOMMU_DOMAIN_ATTACH_DEVICE_EX. */
export function AttachDeviceEx(core: IommuCore, Domain: unknown, DmaDevice: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
  const device = core.devices.get(DmaDevice);
  if (device === undefined) return STATUS_INVALID_PARAMETER_2;
  if (device.domain !== null) return STATUS_INVALID_PARAMETER;
  if ((core.availableDomainTypesOf(device.pdo) & (1 << domain.type)) === 0) return STATUS_ACCESS_DENIED;
  device.domain = domain;
  domain.devices.add(device);
  core.setDeviceDomain(device.pdo, domain);
  return STATUS_SUCCESS;
}

/** IOMMU_DOMAIN_DETACH_DEVICE_EX. The domain keeps its mappings; the device's DMA is blocked. */
export function DetachDeviceEx(core: IommuCore, DmaDevice: unknown): NTSTATUS {
  const device = core.devices.get(DmaDevice);
  if (device === undefined || device.domain === null) return STATUS_INVALID_PARAMETER_1;
  device.domain.devices.delete(device);
  device.domain = null;
  core.setDeviceDomain(device.pdo, null);
  return STATUS_SUCCESS;
}

/** IOMMU_DEVICE_QUERY_DOMAIN_TYPES: returns nothing, as in Windows; bad arguments leave the output alone. */
export function QueryAvailableDomainTypes(core: IommuCore, DmaDevice: unknown, AvailableDomains: Out<number>): void {
  const device = core.devices.get(DmaDevice);
  if (device === undefined || !isOut(AvailableDomains)) return;
  AvailableDomains.value = core.availableDomainTypesOf(device.pdo);
}
