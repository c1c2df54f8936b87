import { Errors } from '../base/errors.js';
import { TWO_32 } from '../base/numbers.js';

/**
 * A device's register file (BAR0) in shared memory: the driver on the main thread and the
 * device model in whichever worker runs it see the same registers. Registers are
 * little-endian 32-bit words; 64-bit registers are two words (low first), written
 * high-then-low by drivers and read low-then-high, as on a 32-bit bus.
 *
 * All accesses are Atomics operations: a register is a synchronisation point between the
 * driver and the device (a doorbell write publishes the descriptors written before it).
 */
export class RegisterFile {
  readonly words: Int32Array;
  readonly size: number;
  /** Called after the driver writes a register (main thread), with the byte offset and the value written. */
  #onWrite: ((offset: number, value: number) => void) | null;
  /** Which registers a driver may write (null: all); writes to the others are dropped. */
  #writable: ((offset: number) => boolean) | null;

  constructor(
    buffer: ArrayBufferLike,
    byteOffset: number,
    size: number,
    onWrite: ((offset: number, value: number) => void) | null = null,
    writable: ((offset: number) => boolean) | null = null,
  ) {
    this.words = new Int32Array(buffer, byteOffset, size / 4);
    this.size = size;
    this.#onWrite = onWrite;
    this.#writable = writable;
  }

  read32(offset: number): number {
    return Atomics.load(this.words, this.#index(offset)) >>> 0;
  }

  write32(offset: number, value: number): void {
    const index = this.#index(offset);
    if (this.#writable !== null && !this.#writable(offset)) return;
    Atomics.store(this.words, index, value | 0);
    this.#onWrite?.(offset, value >>> 0);
  }

  read64(offset: number): number {
    return this.read32(offset) + this.read32(offset + 4) * TWO_32;
  }

  write64(offset: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw Errors.ArgumentOutOfRange('register value', 'a non-negative safe integer', value);
    const high = this.#index(offset + 4);
    if (this.#writable === null || this.#writable(offset + 4)) Atomics.store(this.words, high, Math.floor(value / TWO_32));
    this.write32(offset, value % TWO_32);
  }

  /** Device side: sets a register without triggering doorbell handling. */
  set32(offset: number, value: number): void {
    Atomics.store(this.words, offset >> 2, value | 0);
  }

  set64(offset: number, value: number): void {
    Atomics.store(this.words, (offset >> 2) + 1, Math.floor(value / TWO_32));
    Atomics.store(this.words, offset >> 2, value % TWO_32);
  }

  #index(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset + 4 > this.size || offset % 4 !== 0) {
      throw Errors.NotARegister(offset, this.size);
    }
    return offset >> 2;
  }
}
