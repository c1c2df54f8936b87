import { Errors } from '../../base/errors.js';
import { COPY_ENGINE as R } from '../models/copy-engine.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import type { DriverHost } from './driver-host.js';
import { checkAddress, checkByte, checkCount, refuse } from './arguments.js';
import { DriverBase, type MappedBuffer } from './driver-base.js';

/** How a descriptor ended: status 0 is success, 0x100 | fault type a DMA fault, 0x200 a bad length. */
export interface CopyCompletion {
  cookie: number;
  status: number;
  bytes: number;
}

export interface CopyEngineDriverOptions {
  /** Descriptor ring entries, a power of two (default 256). */
  ringEntries?: number;
  /** MSI vector to ask for (default 1). */
  vector?: number;
}

/**
 * The driver of the 'copy-engine' model (devices/models/copy-engine.ts): keeps a descriptor
 * ring and a completion ring in a reserved logical range, submits copies and fills, and
 * completes them from the MSI handler by reading the completion ring (phase bit).
 */
export class CopyEngineDriver extends DriverBase {
  readonly ringEntries: number;
  readonly #vector: number;
  #descriptors!: MappedBuffer;
  #completions!: MappedBuffer;
  #tail = 0;
  #reaped = 0;
  #nextCookie = 1;
  readonly #waiting = new Map<number, { resolve: (completion: CopyCompletion) => void; reject: (error: Error) => void }>();
  /** Completions reaped so far, and those that reported an error. */
  completed = 0;
  failed = 0;

  constructor(platform: DriverHost, fn: PciFunction, options: CopyEngineDriverOptions = {}) {
    super(platform, fn);
    if (fn.model !== 'copy-engine') throw Errors.WrongDeviceModel('fn', fn.bdf, fn.model, 'copy-engine');
    this.ringEntries = options.ringEntries ?? 256;
    if (!Number.isInteger(Math.log2(this.ringEntries)) || this.ringEntries < 2 || this.ringEntries > 65536) {
      throw Errors.OptionOutOfRange('ringEntries', 'a power of two in 2..65536', this.ringEntries);
    }
    this.#vector = options.vector ?? 1;
  }

  /** Sets the device up: domain, rings, registers, interrupts. */
  start(): this {
    this.attach([this.ringEntries * R.DESCRIPTOR_BYTES, this.ringEntries * R.COMPLETION_BYTES]);
    this.#descriptors = this.ring(this.ringEntries * R.DESCRIPTOR_BYTES);
    this.#completions = this.ring(this.ringEntries * R.COMPLETION_BYTES);
    const registers = this.fn.registers!;
    registers.write32(R.CONTROL, 0);
    registers.write64(R.RING_BASE, this.#descriptors.iova);
    registers.write32(R.RING_SIZE, this.ringEntries);
    registers.write64(R.COMPLETIONS, this.#completions.iova);
    registers.write32(R.MSI_VECTOR, this.#vector);
    registers.write32(R.TAIL, 0);
    this.fn.setInterruptHandler(() => this.reap());
    registers.write32(R.CONTROL, R.CONTROL_ENABLE | R.CONTROL_INTERRUPTS);
    return this;
  }

  /** Descriptors submitted and not yet reaped. */
  get inFlight(): number {
    return this.#waiting.size;
  }

  /** Copies `length` bytes from `sourceIova` to `destinationIova` (both mapped for this device). */
  copy(sourceIova: number, destinationIova: number, length: number): Promise<CopyCompletion> {
    const refused = refuse(() => {
      checkAddress('sourceIova', sourceIova);
      checkAddress('destinationIova', destinationIova);
      checkCount('length', length);
    });
    if (refused !== null) return refused;
    return this.#submit(sourceIova, destinationIova, length, 0);
  }

  /** Fills `length` bytes at `destinationIova` with `byte`. */
  fill(destinationIova: number, length: number, byte: number): Promise<CopyCompletion> {
    const refused = refuse(() => {
      checkAddress('destinationIova', destinationIova);
      checkCount('length', length);
      checkByte('byte', byte);
    });
    if (refused !== null) return refused;
    return this.#submit(byte & 0xff, destinationIova, length, R.FLAG_FILL);
  }

  /** Reads the completion ring up to the first record of the current pass not yet written. */
  reap(): number {
    const memory = this.platform.memory;
    let reaped = 0;
    for (;;) {
      const index = this.#reaped % this.ringEntries;
      const pass = Math.floor(this.#reaped / this.ringEntries);
      const expectedPhase = pass % 2 === 0 ? R.COMPLETION_PHASE : 0;
      const at = this.#completions.physical(index * R.COMPLETION_BYTES);
      const status = memory.readU32(at + 8);
      if ((status & R.COMPLETION_PHASE) >>> 0 !== expectedPhase) break;
      const completion = { cookie: memory.readU64(at), status: status & 0xffff, bytes: memory.readU32(at + 12) };
      this.#reaped++;
      reaped++;
      this.completed++;
      if (completion.status !== 0) this.failed++;
      const waiter = this.#waiting.get(completion.cookie);
      this.#waiting.delete(completion.cookie);
      waiter?.resolve(completion);
    }
    return reaped;
  }

  /** Whether the channel halted (a descriptor or completion was unreachable), and why. */
  get halted(): { halted: boolean; faultType: number } {
    const registers = this.fn.registers!;
    return { halted: (registers.read32(R.STATUS) & R.STATUS_HALTED) !== 0, faultType: registers.read32(R.HALT_FAULT) };
  }

  /**
   * Resets the channel (the way to recover a halted one): disables it, fails every
   * submission still waiting, clears the rings and enables it again.
   */
  async reset(): Promise<void> {
    const registers = this.fn.registers!;
    registers.write32(R.CONTROL, 0);
    await this.platform.devicesIdle();
    for (const waiter of this.#waiting.values()) waiter.reject(Errors.DeviceReset('copy-engine channel'));
    this.#waiting.clear();
    this.#tail = 0;
    this.#reaped = 0;
    this.platform.memory.fill(this.#completions.physical(0), this.#completions.bytes, 0);
    registers.write32(R.TAIL, 0);
    registers.write32(R.CONTROL, R.CONTROL_ENABLE | R.CONTROL_INTERRUPTS);
  }

  /** Stops the channel and releases everything the driver set up. Submitted copies must have completed. */
  async stop(): Promise<void> {
    await this.platform.devicesIdle();
    this.reap();
    this.fn.registers!.write32(R.CONTROL, 0);
    await this.platform.devicesIdle();
    this.fn.setInterruptHandler(null);
    this.detach();
  }

  #submit(source: number, destination: number, length: number, flags: number): Promise<CopyCompletion> {
    if (this.#tail - this.#reaped >= this.ringEntries - 1) this.reap();
    if (this.#tail - this.#reaped >= this.ringEntries - 1) return Promise.reject(Errors.RingFull('descriptor ring'));
    const cookie = this.#nextCookie++;
    const memory = this.platform.memory;
    const at = this.#descriptors.physical((this.#tail % this.ringEntries) * R.DESCRIPTOR_BYTES);
    memory.writeU64(at, source);
    memory.writeU64(at + 8, destination);
    memory.writeU32(at + 16, length);
    memory.writeU32(at + 20, flags | R.FLAG_INTERRUPT);
    memory.writeU64(at + 24, cookie);
    this.#tail++;
    const done = new Promise<CopyCompletion>((resolve, reject) => this.#waiting.set(cookie, { resolve, reject }));
    // The doorbell: the register write publishes the descriptor written above.
    this.fn.registers!.write32(R.TAIL, this.#tail % this.ringEntries);
    return done;
  }
}
