import { nextMacrotask } from '../../base/macrotask.js';
import {
  type FaultRings,
  kClosingField,
  kDoorbellField,
  kDroppedField,
  kFaultWriteNotRead,
  kMainWaitingField,
  kRaisedField,
  kReadIndexField,
  kRecordAddressHigh,
  kRecordAddressLow,
  kRecordDevice,
  kRecordDomain,
  kRecordDomainSerial,
  kRecordFlags,
  kRecordInputMappingId,
  kRecordType,
  kSuppressedField,
  kWriteIndexField,
} from '../shared-memory/fault-rings.js';

/** One fault as read from a ring. */
export interface FaultRecord {
  device: number;
  domainSlot: number;
  domainSerial: number;
  address: number;
  write: boolean;
  flags: number;
  type: number;
  inputMappingId: number;
}

/**
 * `raised` = `delivered` + `dropped` + `suppressed` + `pending`, exactly, at every instant
 * the main thread can observe:
 *  - delivered: handed to a FaultHandler;
 *  - dropped: lost because a ring was full, or because the device's reporting was switched
 *    off (or the device deleted) between the fault and its delivery;
 *  - suppressed: raised by a device whose fault reporting was off (counted, never queued);
 *  - pending: queued in a ring, not yet drained.
 */
export interface FaultStats {
  raised: number;
  delivered: number;
  dropped: number;
  suppressed: number;
  pending: number;
}

/** Receives each drained record; returns true if it reached a handler. */
export type FaultSink = (record: FaultRecord) => boolean;

/**
 * The consumer end of every fault ring (main thread). Drains all rings whenever a producer
 * rings the doorbell, without polling while nothing happens: between bursts it sleeps in
 * Atomics.waitAsync, which does not keep the process alive.
 */
export class FaultDispatcher {
  readonly #rings: FaultRings;
  readonly #sink: FaultSink;
  #delivered = 0;
  #undeliverable = 0;
  #closed = false;
  #running: Promise<void> | null = null;
  /** Reused for every record: the sink must copy what it keeps. */
  readonly #record: FaultRecord = { device: 0, domainSlot: 0, domainSerial: 0, address: 0, write: false, flags: 0, type: 0, inputMappingId: 0 };

  constructor(rings: FaultRings, sink: FaultSink) {
    this.#rings = rings;
    this.#sink = sink;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Stops waiting; records still queued can be drained with drain(). */
  async close(): Promise<void> {
    this.#closed = true;
    Atomics.store(this.#rings.global, kClosingField, 1);
    Atomics.add(this.#rings.global, kDoorbellField, 1);
    // Wakes the dispatcher's waitAsync so that its loop sees #closed and ends.
    Atomics.notify(this.#rings.global, kDoorbellField);
    await this.#running;
  }

  /** Delivers every queued record now; returns how many were drained. */
  drain(): number {
    const rings = this.#rings;
    const uints = rings.uints;
    const ints = rings.ints;
    const record = this.#record;
    let drained = 0;
    for (let ring = 0; ring < rings.ringCount; ring++) {
      const h = rings.headerOf(ring);
      let read = uints[h + kReadIndexField]!;
      const write = Atomics.load(uints, h + kWriteIndexField);
      while (read !== write) {
        const at = rings.recordOf(ring, read);
        record.device = ints[at + kRecordDevice]!;
        record.domainSlot = ints[at + kRecordDomain]!;
        record.domainSerial = ints[at + kRecordDomainSerial]!;
        record.address = (ints[at + kRecordAddressLow]! >>> 0) + ints[at + kRecordAddressHigh]! * 4294967296;
        record.flags = ints[at + kRecordFlags]!;
        record.write = (record.flags & kFaultWriteNotRead) !== 0;
        record.type = ints[at + kRecordType]!;
        record.inputMappingId = ints[at + kRecordInputMappingId]! >>> 0;
        read = (read + 1) >>> 0;
        // Frees the slot for the producer before the handler runs (which may take a while).
        Atomics.store(uints, h + kReadIndexField, read);
        drained++;
        if (this.#sink(record)) this.#delivered++;
        else this.#undeliverable++;
      }
    }
    return drained;
  }

  stats(): FaultStats {
    const rings = this.#rings;
    const uints = rings.uints;
    let raised = 0;
    let dropped = this.#undeliverable;
    let suppressed = 0;
    let pending = 0;
    for (let ring = 0; ring < rings.ringCount; ring++) {
      const h = rings.headerOf(ring);
      // Read pending first: a record published after this read is also counted as raised later.
      pending += (Atomics.load(uints, h + kWriteIndexField) - Atomics.load(uints, h + kReadIndexField)) >>> 0;
      raised += Atomics.load(uints, h + kRaisedField);
      dropped += Atomics.load(uints, h + kDroppedField);
      suppressed += Atomics.load(uints, h + kSuppressedField);
    }
    return { raised, delivered: this.#delivered, dropped, suppressed, pending };
  }

  #pending(): boolean {
    const uints = this.#rings.uints;
    for (let ring = 0; ring < this.#rings.ringCount; ring++) {
      const h = this.#rings.headerOf(ring);
      if (Atomics.load(uints, h + kWriteIndexField) !== Atomics.load(uints, h + kReadIndexField)) return true;
    }
    return false;
  }

  async #loop(): Promise<void> {
    const global = this.#rings.global;
    while (!this.#closed) {
      this.drain();
      // Announce the sleep before the last look, so a record published after that look
      // finds kMainWaitingField set and rings the doorbell.
      Atomics.store(global, kMainWaitingField, 1);
      const doorbell = Atomics.load(global, kDoorbellField);
      if (this.#pending()) {
        Atomics.store(global, kMainWaitingField, 0);
        // Busy: let the rest of the program run between batches.
        await nextMacrotask();
        continue;
      }
      if (waitAsync !== undefined) {
        // Waits for a producer (or close()) to bump the doorbell; resolves at once if it moved.
        const wait = waitAsync(global, kDoorbellField, doorbell);
        if (wait.async) await wait.value;
      } else {
        // A browser without Atomics.waitAsync (Firefox): look again shortly. Faults of
        // dma() calls and device batches are drained when those settle, whatever this does.
        await new Promise((resolve) => setTimeout(resolve, POLL_WITHOUT_WAIT_ASYNC_MS));
      }
      Atomics.store(global, kMainWaitingField, 0);
    }
  }
}

/** Atomics.waitAsync (Node 20 and Chromium have it; TypeScript's ES2022 lib does not declare it). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync?: (array: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;
/** How often the dispatcher looks at the rings where it cannot sleep in Atomics.waitAsync. */
const POLL_WITHOUT_WAIT_ASYNC_MS = 4;
