import type { DeviceModel } from '../device-model.js';
import { copyEngineModel } from './copy-engine.js';
import { dmaTestModel } from './dma-test.js';
import { nicModel } from './nic.js';
import { nvmeModel } from './nvme.js';

export { VIOMMU_VENDOR_ID } from './vendor.js';

/** The device models a PCI function can run, by name; a model's index is its id in shared memory. */
export const MODEL_LIST: readonly DeviceModel[] = Object.freeze([dmaTestModel, copyEngineModel, nvmeModel, nicModel]);
