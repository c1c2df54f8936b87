import type { IommuCore } from '../control/iommu-core.js';
import { INPUT_MAPPING_ELEMENT_SIZE } from '../../base/enums.js';
import {
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import type { INPUT_MAPPING_ELEMENT, Out } from '../types.js';
import { isAbsent, isOut, isUlong } from './parameters.js';

/**
 * IOMMU_QUERY_INPUT_MAPPINGS (ARM64 only): the input mapping IDs (SMMU stream IDs) of a PCI
 * function: one per function, its requester ID plus the segment's base. Lengths are bytes,
 * 4 per INPUT_MAPPING_ELEMENT. `Buffer` is an array filled with { InputMappingId } elements
 * (or a Uint32Array filled with the IDs themselves). Too small: STATUS_BUFFER_TOO_SMALL,
 * nothing written, and ReturnLength (if given) receives the bytes needed.
 */
export function QueryInputMappings(
  core: IommuCore,
  PhysicalDeviceObject: unknown,
  Buffer: unknown,
  BufferLength: unknown,
  ReturnLength: Out<number> | null | undefined,
): NTSTATUS {
  if (core.arch !== 'arm64') return STATUS_NOT_SUPPORTED;
  if (!core.bus.owns(PhysicalDeviceObject)) return STATUS_INVALID_PARAMETER_1;
  if (!Array.isArray(Buffer) && !(Buffer instanceof Uint32Array)) return STATUS_INVALID_PARAMETER_2;
  if (!isUlong(BufferLength) || (Buffer instanceof Uint32Array && BufferLength > Buffer.byteLength)) return STATUS_INVALID_PARAMETER_3;
  if (!isAbsent(ReturnLength) && !isOut(ReturnLength)) return STATUS_INVALID_PARAMETER_4;
  // A function the IOMMU does not see has no stream ID to report.
  if (!PhysicalDeviceObject.behindIommu) return STATUS_UNSUCCESSFUL;
  const ids = [PhysicalDeviceObject.inputMappingId];
  const needed = ids.length * INPUT_MAPPING_ELEMENT_SIZE;
  if (ReturnLength) ReturnLength.value = needed;
  if (BufferLength < needed) return STATUS_BUFFER_TOO_SMALL;
  ids.forEach((id, i) => {
    if (Buffer instanceof Uint32Array) Buffer[i] = id;
    else (Buffer as INPUT_MAPPING_ELEMENT[])[i] = { InputMappingId: id };
  });
  return STATUS_SUCCESS;
}
