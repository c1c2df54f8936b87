/** Messages between the main thread and the DMA workers (one piscina task each). */

/** One DMA issued by a device (platform.dma). */
interface DmaTask {
  kind: 'dma';
  device: number;
  address: number;
  length: number;
  /** Bytes to write; absent for a read. */
  write?: Uint8Array;
}

/** Several DMAs by one device, run back to back in one worker (platform.dmaBatch). */
interface DmaBatchTask {
  kind: 'dma-batch';
  device: number;
  requests: Array<{ address: number; length: number; write?: Uint8Array }>;
}

/**
 * How one DMA ended (platform.dma, platform.dmaBatch): the bytes read, or the fault. A fault's
 * `faultType` is a FAULT_INFORMATION_ARM64_TYPE value; `blocked` means the function may not
 * master the bus (the IOMMU never saw the access), and then faultType is
 * UnsupportedUpstreamTransaction.
 */
export type DmaResult = { ok: true; data?: Uint8Array } | { ok: false; faultType: number; faultAddress: number; blocked: boolean };

/** Calls `export` of the ES module at `url` as fn(runtime, args) in a worker (platform.runInWorker). */
interface ModuleTask {
  kind: 'module';
  url: string;
  export: string;
  args: unknown;
}

/** One batch of a device model's work (the device at context slot `device`). */
interface DeviceWorkTask {
  kind: 'device-work';
  device: number;
}

export type WorkerTask = DmaTask | DmaBatchTask | ModuleTask | DeviceWorkTask;
