import { DMA_OK, DmaPort } from './dma-port.js';

/**
 * Told after a device wrote guest RAM, with the physical range [start, end): for an emulator
 * that caches code translated from guest memory (v86's JIT forgets those pages with
 * cpu.jit_dirty_cache). Only ports on the emulator's own thread have one.
 */
export type DeviceWriteObserver = (start: number, end: number) => void;

/**
 * A DMA port that tells an observer which guest-physical ranges each successful write
 * covered (options.onDeviceWrite). A class of its own, so that DmaPort's write paths carry
 * no check for it: worker threads only ever see DmaPort, and V8 keeps their calls
 * monomorphic. Where a write landed is in the engine's fragments when DmaPort translated it;
 * when DmaPort's micro-TLB served it instead (the engine untouched: its fragment count still
 * holds the -1 set here beforehand), the range is translated again, an IOTLB hit on the
 * platform's thread, where nothing can have changed the tables meanwhile.
 */
export class ObservedDmaPort extends DmaPort {
  readonly #observer: DeviceWriteObserver;

  /** @internal Made by the worker runtime of the platform's own thread. */
  constructor(engine: DmaPort['engine'], ram: Uint8Array, sequenceHeader: Int32Array, device: number, observer: DeviceWriteObserver) {
    super(engine, ram, sequenceHeader, device);
    this.#observer = observer;
  }

  override write(iova: number, source: Uint8Array, offset = 0, length = source.length - offset): number {
    this.engine.fragmentCount = -1;
    return this.#wrote(super.write(iova, source, offset, length), iova, length);
  }

  override fill(iova: number, length: number, value: number): number {
    this.engine.fragmentCount = -1;
    return this.#wrote(super.fill(iova, length, value), iova, length);
  }

  override copy(sourceIova: number, destinationIova: number, length: number): number {
    // A copy translates its source too: where the destination landed is not worth untangling.
    const result = super.copy(sourceIova, destinationIova, length);
    this.engine.fragmentCount = -1;
    return this.#wrote(result, destinationIova, length);
  }

  override writeU32(iova: number, value: number): number {
    this.engine.fragmentCount = -1;
    return this.#wrote(super.writeU32(iova, value), iova, 4);
  }

  override writeU64(iova: number, value: number): number {
    this.engine.fragmentCount = -1;
    return this.#wrote(super.writeU64(iova, value), iova, 8);
  }

  /** Reports where a successful write of `length` bytes at `iova` landed; passes `result` on. */
  #wrote(result: number, iova: number, length: number): number {
    if (result !== DMA_OK || length <= 0) return result;
    const engine = this.engine;
    // -1: the micro-TLB served the write and the engine never saw it.
    if (engine.fragmentCount < 0 && engine.translate(this.device, iova, length, true) !== DMA_OK) return result;
    const fragments = engine.fragments;
    for (let i = 0; i < engine.fragmentCount; i++) {
      const start = fragments[2 * i]!;
      this.#observer(start, start + fragments[2 * i + 1]!);
    }
    return result;
  }
}
