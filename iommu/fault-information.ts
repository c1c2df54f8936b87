import type { IommuCore } from './control/iommu-core.js';
import type { FaultRecord } from './control/fault-dispatcher.js';
import { type FAULT_INFORMATION_ARM64_TYPE, type FAULT_INFORMATION_X64_TYPE, FaultInformationArm64, FaultInformationX64 } from '../base/enums.js';
import { kFaultAddressValid, kFaultWriteNotRead } from './shared-memory/fault-rings.js';
import type { FAULT_INFORMATION } from './types.js';

/**
 * Builds the FAULT_INFORMATION a FaultHandler receives from a drained fault record: the ARM64
 * variant on arm64 (domain handle, faulting address, PDO, input mapping ID, flags, type,
 * IommuBaseAddress), the X64 variant on x64. The record's type is one the walkers wrote: a
 * FAULT_INFORMATION_ARM64_TYPE member. The domain handle is null if the domain has been
 * deleted since the fault.
 */
export function faultInformationOf(core: IommuCore, record: FaultRecord, iommuBaseAddress: number, pciSegment: number): FAULT_INFORMATION {
  const domain = record.domainSlot >= 0 ? core.domainAt[record.domainSlot] : undefined;
  const domainHandle = domain !== undefined && domain.serial === record.domainSerial ? domain.handle : null;
  const write = (record.flags & kFaultWriteNotRead) !== 0;
  const addressValid = (record.flags & kFaultAddressValid) !== 0;
  if (core.arch === 'x64') {
    return {
      Type: FaultInformationX64,
      IsStage1: true,
      X64: {
        DomainHandle: domainHandle,
        FaultAddress: record.address,
        Flags: { FaultAddressValid: addressValid, AsULONG: addressValid ? 1 : 0 },
        Type: record.type as FAULT_INFORMATION_X64_TYPE,
        IommuBaseAddress: iommuBaseAddress,
        PciSegment: pciSegment,
      },
    };
  }
  return {
    Type: FaultInformationArm64,
    IsStage1: true,
    Arm64: {
      DomainHandle: domainHandle,
      FaultAddress: record.address,
      PhysicalDeviceObject: core.bus.functionAt(record.device) ?? null,
      InputMappingId: record.inputMappingId,
      Flags: {
        WriteNotRead: write,
        InstructionNotData: false,
        Privileged: false,
        FaultAddressValid: addressValid,
        AsULONG: record.flags & (kFaultWriteNotRead | kFaultAddressValid),
      },
      Type: record.type as FAULT_INFORMATION_ARM64_TYPE,
      IommuBaseAddress: iommuBaseAddress,
    },
  };
}
