import type { IommuHooks, Requester } from '../../hardware/substrate.js';
import {
  type DeviceContextTable,
  kContextBehindIommu,
  kContextBusMaster,
  kContextDomainField,
  kContextFaultReporting,
  kContextFlagsField,
  kContextInputMappingField,
  kContextPresent,
  kNoDomain,
} from '../shared-memory/device-context-table.js';
import { type InvalidationLog, kInvalidateDevice } from '../shared-memory/invalidation-log.js';

/**
 * The only writer of the device context table (main thread). It is the IOMMU's end of the
 * bus hooks (PciBus.setupIommu): the bus reports functions and Bus Master changes, the
 * routines attach domains and switch fault reporting, and every change that a worker may
 * have cached is followed by an invalidation record, so no DMA that starts afterwards uses
 * the old context.
 */
export class DeviceContexts implements IommuHooks {
  readonly #table: DeviceContextTable;
  readonly #log: InvalidationLog;

  constructor(table: DeviceContextTable, log: InvalidationLog) {
    this.#table = table;
    this.#log = log;
  }

  functionAdded(fn: Requester): void {
    // A fresh slot: no worker has cached it, so nothing to publish.
    this.#table.set(fn.slot, kContextDomainField, kNoDomain);
    this.#table.set(fn.slot, kContextInputMappingField, fn.inputMappingId);
    this.#table.set(fn.slot, kContextFlagsField, kContextPresent | (fn.behindIommu ? kContextBehindIommu : 0));
  }

  busMasterChanged(fn: Requester, enabled: boolean): void {
    this.#table.setFlag(fn.slot, kContextBusMaster, enabled);
    this.#log.publish(kInvalidateDevice, fn.slot, 0, 0);
  }

  /** Points `fn`'s context at domain slot `domainSlot`, or at none (kNoDomain). */
  setDomain(fn: Requester, domainSlot: number): void {
    this.#table.set(fn.slot, kContextDomainField, domainSlot);
    this.#log.publish(kInvalidateDevice, fn.slot, 0, 0);
  }

  setFaultReporting(fn: Requester, enabled: boolean): void {
    this.#table.setFlag(fn.slot, kContextFaultReporting, enabled);
    this.#log.publish(kInvalidateDevice, fn.slot, 0, 0);
  }
}
