import { faultInformationOf } from '../fault-information.js';
import type { FaultRecord } from './fault-dispatcher.js';
import type { IommuCore } from './iommu-core.js';

/**
 * Hands a drained fault record to its device's FaultHandler (SetDeviceFaultReportingEx) as
 * FAULT_INFORMATION. Returns false when nobody listens any more (the function or its DMA
 * device is gone, or reporting was switched off): the dispatcher counts the record as dropped.
 * A handler that throws is the caller's problem, not the IOMMU's: `onCallbackError` hears of it.
 */
export function deliverFault(core: IommuCore, record: FaultRecord, iommuBaseAddress: number, onCallbackError: (error: unknown) => void): boolean {
  const fn = core.bus.functionAt(record.device);
  const device = fn === undefined ? undefined : core.deviceOfFunction.get(fn);
  const config = device?.faultConfig;
  if (config === undefined || config === null) return false;
  const info = faultInformationOf(core, record, iommuBaseAddress, 0);
  try {
    config.FaultHandler(config.FaultContext, info);
  } catch (error) {
    onCallbackError(error);
  }
  return true;
}
