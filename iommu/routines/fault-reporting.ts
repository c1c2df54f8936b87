import type { IommuCore } from '../control/iommu-core.js';
import {
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_NOT_IMPLEMENTED,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import type { DEVICE_FAULT_CONFIGURATION } from '../types.js';
import { isBoolean, isUlong } from './parameters.js';

/**
 * IOMMU_SET_DEVICE_FAULT_REPORTING_EX. Windows documents it as always
 * STATUS_NOT_IMPLEMENTED (kept under the `faultReportingEx: 'windows'` option); here it works:
 * once enabled, every fault of the device reaches FaultHandler(FaultContext, info) on the main
 * thread. Disabled (the default), faults are only counted.
 */
export function SetDeviceFaultReportingEx(core: IommuCore, DmaDevice: unknown, InputMappingIdBase: unknown, Enable: unknown, FaultConfig: unknown): NTSTATUS {
  if (core.options.faultReportingEx === 'windows') return STATUS_NOT_IMPLEMENTED;
  const device = core.devices.get(DmaDevice);
  if (device === undefined || device.domain === null) return STATUS_INVALID_PARAMETER_1;
  if (!isUlong(InputMappingIdBase)) return STATUS_INVALID_PARAMETER_2;
  // On arm64 the base names one of the device's stream IDs; x64 has none, so it must be 0.
  const expected = core.arch === 'arm64' ? device.pdo.inputMappingId : 0;
  if (InputMappingIdBase !== expected) return STATUS_INVALID_PARAMETER_2;
  if (!isBoolean(Enable)) return STATUS_INVALID_PARAMETER_3;
  if (Enable) {
    const config = FaultConfig as Partial<DEVICE_FAULT_CONFIGURATION> | null | undefined;
    if (typeof config !== 'object' || config === null || typeof config.FaultHandler !== 'function') return STATUS_INVALID_PARAMETER_4;
    device.faultConfig = { FaultHandler: config.FaultHandler, FaultContext: config.FaultContext };
  } else {
    device.faultConfig = null;
  }
  core.setFaultReporting(device.pdo, Boolean(Enable));
  return STATUS_SUCCESS;
}
