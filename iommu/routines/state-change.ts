import type { DmaDeviceState } from '../control/handle-state.js';
import type { IommuCore } from '../control/iommu-core.js';
import { IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES } from '../../base/enums.js';
import {
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import type { IOMMU_INTERFACE_STATE_CHANGE_CALLBACK } from '../types.js';
import { isUlong } from './parameters.js';

/**
 * IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK: one registration per DMA device. The
 * callback runs once, synchronously, before this returns (PresentFields.AsULONG = 1 and the
 * current mask), then once for every real change of the device's available domain types.
 */
export function RegisterInterfaceStateChangeCallback(
  core: IommuCore,
  StateChangeCallback: unknown,
  Context: unknown,
  DmaDevice: unknown,
  StateFields: unknown,
): NTSTATUS {
  if (typeof StateChangeCallback !== 'function') return STATUS_INVALID_PARAMETER_1;
  const device = core.devices.get(DmaDevice);
  if (device === undefined) return STATUS_INVALID_PARAMETER_3;
  const fields = StateFields as { AsULONG?: unknown } | null;
  if (typeof fields !== 'object' || fields === null || !isUlong(fields.AsULONG)) return STATUS_INVALID_PARAMETER_4;
  if ((fields.AsULONG & IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES) === 0) return STATUS_INVALID_PARAMETER_4;
  if (device.registration !== null) return STATUS_UNSUCCESSFUL;
  const mask = core.availableDomainTypesOf(device.pdo);
  device.registration = { callback: StateChangeCallback as IOMMU_INTERFACE_STATE_CHANGE_CALLBACK, context: Context, lastReported: mask };
  report(core, device, mask);
  return STATUS_SUCCESS;
}

/** IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK: no call starts after it returns. */
export function UnregisterInterfaceStateChangeCallback(core: IommuCore, StateChangeCallback: unknown, DmaDevice: unknown): NTSTATUS {
  const device = core.devices.get(DmaDevice);
  if (device === undefined || device.registration === null || device.registration.callback !== StateChangeCallback) return STATUS_UNSUCCESSFUL;
  device.registration = null;
  return STATUS_SUCCESS;
}

/** Calls each registered device whose mask changed since it was last told (policy changes). */
export function reportStateChanges(core: IommuCore): void {
  for (const device of [...core.deviceOfFunction.values()]) {
    const registration = device.registration;
    if (registration === null) continue;
    const mask = core.availableDomainTypesOf(device.pdo);
    if (mask === registration.lastReported) continue;
    registration.lastReported = mask;
    report(core, device, mask);
  }
}

function report(core: IommuCore, device: DmaDeviceState, mask: number): void {
  const registration = device.registration!;
  try {
    registration.callback({ PresentFields: { AsULONG: IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES }, AvailableDomainTypes: mask }, registration.context);
  } catch (error) {
    core.reportCallbackError(error);
  }
}
