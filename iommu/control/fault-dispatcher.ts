import { nextMacrotask } from '../../base/macrotask.js';
import { TWO_32 } from '../../base/numbers.js';
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
  kCollapsedField,
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
 *  - dropped: lost because the worker's ring was full, because the device already had its
 *    share (a quarter) of the ring waiting, because the device was past its delivery rate
 *    (FAULT_DELIVERIES_PER_SECOND after a burst of FAULT_BURST), or because the device's
 *    reporting was switched off (or the device deleted) between the fault and its delivery;
 *  - suppressed: raised by a device whose fault reporting was off (counted, never queued),
 *    or identical to that device's fault still waiting in the ring (collapsed into it, as
 *    SMMU and VT-d collapse repeated faults: the handler hears of the fault once);
 *  - pending: queued in a ring, not yet drained.
 */
export interface FaultStats {
  raised: number;
  delivered: number;
  dropped: number;
  suppressed: number;
  pending: number;
  /** Of `suppressed`, the repeats collapsed into a waiting twin (informational; not a term of the sum). */
  collapsed: number;
}

/**
 * Deliveries one device may get: a burst of FAULT_BURST, then FAULT_DELIVERIES_PER_SECOND.
 * Beyond that its records are counted as dropped without calling its handler, and the device
 * is muted (its producers stop waking this thread) until its budget is half refilled. A
 * device that faults as fast as it can thus costs the main thread a bounded share of its
 * time, and other devices' faults keep their latency.
 */
export const FAULT_DELIVERIES_PER_SECOND = 50_000;
export const FAULT_BURST = 1024;

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
  /** Per device slot: deliveries it may still get now, and when that was worked out (ms). */
  readonly #budget: Float64Array;
  readonly #budgetAt: Float64Array;
  /** Devices muted now (their entries of rings.muted are 1). */
  readonly #mutedDevices: number[] = [];
  #mutedCount = 0;
  #closed = false;
  #running: Promise<void> | null = null;
  /** Reused for every record: the sink must copy what it keeps. */
  readonly #record: FaultRecord = { device: 0, domainSlot: 0, domainSerial: 0, address: 0, write: false, flags: 0, type: 0, inputMappingId: 0 };

  constructor(rings: FaultRings, sink: FaultSink) {
    this.#rings = rings;
    this.#sink = sink;
    this.#budget = new Float64Array(rings.muted.length).fill(FAULT_BURST);
    this.#budgetAt = new Float64Array(rings.muted.length);
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
    const now = performance.now();
    let drained = 0;
    if (this.#mutedCount > 0) this.#unmuteRefilled(now);
    for (let ring = 0; ring < rings.ringCount; ring++) {
      const h = rings.headerOf(ring);
      let read = uints[h + kReadIndexField]!;
      const write = Atomics.load(uints, h + kWriteIndexField);
      while (read !== write) {
        const at = rings.recordOf(ring, read);
        record.device = ints[at + kRecordDevice]!;
        record.domainSlot = ints[at + kRecordDomain]!;
        record.domainSerial = ints[at + kRecordDomainSerial]!;
        record.address = (ints[at + kRecordAddressLow]! >>> 0) + ints[at + kRecordAddressHigh]! * TWO_32;
        record.flags = ints[at + kRecordFlags]!;
        record.write = (record.flags & kFaultWriteNotRead) !== 0;
        record.type = ints[at + kRecordType]!;
        record.inputMappingId = ints[at + kRecordInputMappingId]! >>> 0;
        read = (read + 1) >>> 0;
        // Frees the slot for the producer before the handler runs (which may take a while).
        Atomics.store(uints, h + kReadIndexField, read);
        drained++;
        if (this.#spend(record.device, now) && this.#sink(record)) this.#delivered++;
        else this.#undeliverable++;
      }
    }
    return drained;
  }

  /** Takes one delivery from `device`'s budget; false (and the device muted) when it has none left. */
  #spend(device: number, now: number): boolean {
    const budget = this.#budget;
    if (device < 0 || device >= budget.length) return true;
    let tokens = budget[device]!;
    if (tokens < FAULT_BURST) tokens = Math.min(FAULT_BURST, tokens + ((now - this.#budgetAt[device]!) * FAULT_DELIVERIES_PER_SECOND) / 1000);
    this.#budgetAt[device] = now;
    if (tokens >= 1) {
      budget[device] = tokens - 1;
      return true;
    }
    budget[device] = tokens;
    if (this.#rings.muted[device] === 0) {
      Atomics.store(this.#rings.muted, device, 1);
      this.#mutedDevices.push(device);
      this.#mutedCount++;
    }
    return false;
  }

  /** Lets muted devices whose budget is half refilled ring the doorbell again. */
  #unmuteRefilled(now: number): void {
    const muted = this.#rings.muted;
    const list = this.#mutedDevices;
    for (let i = list.length - 1; i >= 0; i--) {
      const device = list[i]!;
      const tokens = this.#budget[device]! + ((now - this.#budgetAt[device]!) * FAULT_DELIVERIES_PER_SECOND) / 1000;
      if (tokens < FAULT_BURST / 2) continue;
      Atomics.store(muted, device, 0);
      list[i] = list[list.length - 1]!;
      list.pop();
      this.#mutedCount--;
    }
  }

  stats(): FaultStats {
    const rings = this.#rings;
    const uints = rings.uints;
    let raised = 0;
    let dropped = this.#undeliverable;
    let suppressed = 0;
    let collapsed = 0;
    let pending = 0;
    for (let ring = 0; ring < rings.ringCount; ring++) {
      const h = rings.headerOf(ring);
      // Read pending first: a record published after this read is also counted as raised later.
      pending += (Atomics.load(uints, h + kWriteIndexField) - Atomics.load(uints, h + kReadIndexField)) >>> 0;
      raised += Atomics.load(uints, h + kRaisedField);
      dropped += Atomics.load(uints, h + kDroppedField);
      suppressed += Atomics.load(uints, h + kSuppressedField);
      collapsed += Atomics.load(uints, h + kCollapsedField);
    }
    return { raised, delivered: this.#delivered, dropped, suppressed, pending, collapsed };
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
      if (this.#mutedCount === 0 && this.#pending()) {
        Atomics.store(global, kMainWaitingField, 0);
        // Busy: let the rest of the program run between batches.
        await nextMacrotask();
        continue;
      }
      if (waitAsync !== undefined) {
        // Waits for a producer (or close()) to bump the doorbell; resolves at once if it moved.
        // While some device is muted, its records wait for the next round, 1 ms from now at the latest.
        const wait = this.#mutedCount === 0 ? waitAsync(global, kDoorbellField, doorbell) : waitAsync(global, kDoorbellField, doorbell, 1);
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
    waitAsync?: (array: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;
/** How often the dispatcher looks at the rings where it cannot sleep in Atomics.waitAsync. */
const POLL_WITHOUT_WAIT_ASYNC_MS = 4;
