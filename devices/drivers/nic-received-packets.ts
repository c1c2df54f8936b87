import type { GuestMemory } from '../../hardware/guest-memory.js';
import { NIC as R } from '../models/nic.js';
import type { MappedBuffer } from './driver-base.js';
import { readGuest } from './nic-driver-support.js';

/**
 * The last step of NicDriver's receive path: the descriptors of one packet come in one by one
 * as they are reaped, and whole packets go out, to the onPacket callback or, without one, to
 * receive() calls, waiting ones first, else queued until one comes.
 */
export class ReceivedPackets {
  readonly #onPacket: ((packet: Uint8Array) => void) | undefined;
  /** Parts of the packet being reassembled, and the error status of its chain (0: none). */
  #parts: Uint8Array[] = [];
  #error = 0;
  readonly #queued: Uint8Array[] = [];
  readonly #waiting: { resolve: (packet: Uint8Array) => void; reject: (error: Error) => void }[] = [];

  constructor(onPacket: ((packet: Uint8Array) => void) | undefined) {
    this.#onPacket = onPacket;
  }

  /**
   * A reaped descriptor of the packet being reassembled, with the status the device wrote:
   * an ERROR status fails the packet's chain; otherwise its bytes are copied out of `buffer`
   * (from `offset`), unless the chain already failed.
   */
  addDescriptor(status: number, memory: GuestMemory, buffer: MappedBuffer, offset: number): void {
    if ((status & R.DESC_ERROR) !== 0) this.#error = status;
    else if (this.#error === 0) this.#parts.push(readGuest(memory, buffer, offset, status & R.BYTES_MASK));
  }

  /** Ends the packet being reassembled: 0 when it is whole, else the error status of its chain (the packet is dropped). */
  endPacket(): number {
    const error = this.#error;
    this.#error = 0;
    if (error !== 0) this.#parts = [];
    return error;
  }

  /** Hands the packet that endPacket() found whole to its receiver. */
  deliver(): void {
    const parts = this.#parts;
    this.#parts = [];
    const packet = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      packet.set(part, offset);
      offset += part.length;
    }
    if (this.#onPacket !== undefined) this.#onPacket(packet);
    else {
      const receiver = this.#waiting.shift();
      if (receiver !== undefined) receiver.resolve(packet);
      else this.#queued.push(packet);
    }
  }

  /** The next packet: a queued one, or one still to come (null when none is queued and none may come). */
  next(mayCome: boolean): Promise<Uint8Array> | null {
    const packet = this.#queued.shift();
    if (packet !== undefined) return Promise.resolve(packet);
    if (!mayCome) return null;
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  /** Packets received and not yet taken. */
  get queued(): number {
    return this.#queued.length;
  }

  /** Fails every receive() still waiting. */
  failWaiting(error: () => Error): void {
    for (const receiver of this.#waiting.splice(0)) receiver.reject(error());
  }
}
