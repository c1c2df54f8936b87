import { WorkerSlots } from './worker-slots.js';
import { DeviceContextTable } from './device-context-table.js';
import { DomainTable } from './domain-table.js';
import { FaultRings } from './fault-rings.js';
import { IdentityWindows } from './identity-windows.js';
import { InvalidationLog } from './invalidation-log.js';
import { PageTablePool, TABLE_BYTES } from './page-table-pool.js';

/**
 * Every SharedArrayBuffer the data plane needs, as handed to each worker once (in piscina's
 * workerData). Nothing in here is reachable by DMA: only `guestMemory` is guest RAM.
 */
export interface SharedBuffers {
  guestMemory: SharedArrayBuffer;
  pageTables: SharedArrayBuffer;
  domains: SharedArrayBuffer;
  identityWindows: SharedArrayBuffer;
  contexts: SharedArrayBuffer;
  invalidations: SharedArrayBuffer;
  faultRings: SharedArrayBuffer;
  faultRingCount: number;
  faultRingCapacity: number;
  workerSlots: SharedArrayBuffer;
}

/** Typed views over SharedBuffers, built once per thread. */
export interface SharedState {
  guestMemory: SharedArrayBuffer;
  pageTables: PageTablePool;
  domains: DomainTable;
  identityWindows: IdentityWindows;
  contexts: DeviceContextTable;
  invalidations: InvalidationLog;
  faultRings: FaultRings;
  workerSlots: WorkerSlots;
}

export function attachSharedState(buffers: SharedBuffers): SharedState {
  return {
    guestMemory: buffers.guestMemory,
    pageTables: new PageTablePool(buffers.pageTables),
    domains: new DomainTable(buffers.domains),
    identityWindows: new IdentityWindows(buffers.identityWindows),
    contexts: new DeviceContextTable(buffers.contexts),
    invalidations: new InvalidationLog(buffers.invalidations),
    faultRings: new FaultRings(buffers.faultRings, buffers.faultRingCount, buffers.faultRingCapacity),
    workerSlots: new WorkerSlots(buffers.workerSlots),
  };
}

export function sharedBuffersOf(state: SharedState): SharedBuffers {
  return {
    guestMemory: state.guestMemory,
    pageTables: state.pageTables.buffer,
    domains: state.domains.buffer,
    identityWindows: state.identityWindows.buffer,
    contexts: state.contexts.buffer,
    invalidations: state.invalidations.buffer,
    faultRings: state.faultRings.buffer,
    faultRingCount: state.faultRings.ringCount,
    faultRingCapacity: state.faultRings.capacity,
    workerSlots: state.workerSlots.buffer,
  };
}

/** The sizes createSharedState needs (the platform's options). */
export interface SharedStateSizes {
  pageTableBytes: number;
  maxDomains: number;
  maxFunctions: number;
  invalidationLogCapacity: number;
  faultRingCapacity: number;
  /** Workers the data plane runs at once. */
  workers: number;
}

/**
 * Allocates every shared structure of the IOMMU over `guestMemory`. Fault rings: one per
 * worker, as many again for the workers that replace crashed ones, and the main thread's
 * (the last ring, which no worker slot owns).
 */
export function createSharedState(guestMemory: SharedArrayBuffer, sizes: SharedStateSizes): SharedState {
  const ringCount = sizes.workers * 2 + 2;
  return {
    guestMemory,
    pageTables: PageTablePool.create(Math.floor(sizes.pageTableBytes / TABLE_BYTES)),
    domains: DomainTable.create(sizes.maxDomains),
    identityWindows: IdentityWindows.create(sizes.maxDomains),
    contexts: DeviceContextTable.create(sizes.maxFunctions),
    invalidations: InvalidationLog.create(sizes.invalidationLogCapacity),
    faultRings: FaultRings.create(ringCount, sizes.faultRingCapacity, sizes.maxFunctions),
    workerSlots: WorkerSlots.create(ringCount - 1),
  };
}
