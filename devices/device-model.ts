import type { DmaPort } from '../iommu/data-plane/dma-port.js';
import type { FunctionModel } from '../hardware/function-model.js';
import type { RegisterFile } from '../hardware/register-file.js';

/**
 * The contract between a device model and the platform.
 *
 * A model describes its PCI identity and register file, says which register writes are
 * doorbells (FunctionModel, what the bus needs), and implements `process`, which runs in a
 * worker thread (or on the platform's own thread, with dataPlane 'main-thread') whenever the
 * device has work. All of a device's state lives in its registers, in guest memory (rings,
 * buffers, reached by DMA through the IOMMU) and in optional device-private shared memory,
 * never in a worker, so any worker can run any device's next batch. The platform guarantees that at most one worker runs a given device
 * at a time.
 */
export interface DeviceModel<Scratch = unknown> extends FunctionModel {
  /**
   * Optional: the working memory `process` reuses from one batch to the next (a command's
   * buffers, staging areas), so that it allocates nothing per command and keeps nothing at
   * module level. Made on first use, once per function and thread; never shared between
   * threads, never saved, and holding nothing a later batch relies on.
   */
  createScratch?(): Scratch;
  /** Worker side: does a bounded batch of the device's pending work. */
  process(context: DeviceWorkContext<Scratch>): void;
}

/** What `process` gets: everything is the device's own, except `kick`, which reaches another device. */
export interface DeviceWorkContext<Scratch = unknown> {
  /** What createScratch made for this function on this thread (undefined without createScratch). */
  readonly scratch: Scratch;
  readonly registers: RegisterFile;
  /** This function's DMA port: every access goes through the IOMMU. */
  readonly port: DmaPort;
  /** Device-private shared memory (privateMemoryBytes), or an empty array. */
  readonly privateMemory: Uint8Array;
  /** Context slot of this function (its identity on the bus). */
  readonly slot: number;
  /** Slot of the function wired to this one (PciBus.connect, kControlPeer), or -1. */
  readonly peer: number;
  /** Raises MSI vector `vector`: the driver's interrupt handler runs on the main thread. */
  raise(vector: number): void;
  /** Asks the platform to run device `slot` (for example the NIC at the other end of the wire). */
  kick(slot: number): void;
  /** The device private memory of another function (a wired peer), or null. */
  privateMemoryOf(slot: number): Uint8Array | null;
  /** Asks to be run again soon (the batch limit was reached with work left). */
  again(): void;
}
