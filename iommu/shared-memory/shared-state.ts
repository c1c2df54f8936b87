import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';
import { WorkerSlots } from './worker-slots.js';
import { DeviceContextTable } from './device-context-table.js';
import { DomainTable } from './domain-table.js';
import { FaultRings } from './fault-rings.js';
import { IdentityWindows } from './identity-windows.js';
import { InvalidationLog } from './invalidation-log.js';
import { PageTablePool, TABLE_BYTES } from './page-table-pool.js';

/**
 * Every buffer the data plane needs, as handed to each worker once (in piscina's
 * workerData): SharedArrayBuffers for a data plane in workers, plain ArrayBuffers for one on
 * the calling thread (base/buffers.ts). Nothing in here is reachable by DMA but
 * `guestMemory`, guest RAM: a byte view (any offset into its buffer, a multiple of 8 bytes,
 * so that an emulator's RAM inside a larger WebAssembly memory serves as is).
 */
export interface SharedBuffers {
  guestMemory: Uint8Array;
  pageTables: ArrayBufferLike;
  domains: ArrayBufferLike;
  identityWindows: ArrayBufferLike;
  contexts: ArrayBufferLike;
  invalidations: ArrayBufferLike;
  faultRings: ArrayBufferLike;
  faultRingCount: number;
  faultRingCapacity: number;
  workerSlots: ArrayBufferLike;
}

/** Typed views over SharedBuffers, built once per thread. */
export interface SharedState {
  guestMemory: Uint8Array;
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
 * Allocates every shared structure of the IOMMU over `guestMemory`, with `allocate`
 * (SharedArrayBuffers unless the data plane runs on this thread). Fault rings: one per
 * worker, as many again for the workers that replace crashed ones, and the main thread's
 * (the last ring, which no worker slot owns).
 */
export function createSharedState(guestMemory: Uint8Array, sizes: SharedStateSizes, allocate: BufferAllocator = sharedBuffer): SharedState {
  const ringCount = sizes.workers * 2 + 2;
  return {
    guestMemory,
    pageTables: PageTablePool.create(Math.floor(sizes.pageTableBytes / TABLE_BYTES), allocate),
    domains: DomainTable.create(sizes.maxDomains, allocate),
    identityWindows: IdentityWindows.create(sizes.maxDomains, allocate),
    contexts: DeviceContextTable.create(sizes.maxFunctions, allocate),
    invalidations: InvalidationLog.create(sizes.invalidationLogCapacity, allocate),
    faultRings: FaultRings.create(ringCount, sizes.faultRingCapacity, sizes.maxFunctions, allocate),
    workerSlots: WorkerSlots.create(ringCount - 1, allocate),
  };
}
