import { TWO_32 } from '../../base/numbers.js';
import {
  FAULT_RECORD_INTS,
  type FaultRings,
  kDoorbellField,
  kDroppedField,
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
  RING_HEADER_INTS,
  kFaultAddressValid,
  kFaultWriteNotRead,
} from '../shared-memory/fault-rings.js';
import {
  CONTEXT_RECORD_INTS,
  type DeviceContextTable,
  kContextFaultReporting,
  kContextFlagsField,
  kContextInputMappingField,
} from '../shared-memory/device-context-table.js';
import { DOMAIN_RECORD_INTS, type DomainTable, kDomainSerialField } from '../shared-memory/domain-table.js';

/**
 * The producer end of one worker's fault ring (layout in shared-memory/fault-rings.ts). `raise`
 * never allocates and never throws: it writes a record, or counts the fault as suppressed
 * (the device's reporting is off, or the same fault is still waiting in the ring) or as
 * dropped (the ring is full, or the device has its share of it waiting). It blocks in one
 * case only, below.
 *
 * Back-pressure: a device the main thread has muted (past its delivery budget) is flooding.
 * In a DMA worker, every STALL_EVERY faults it raises while muted, its worker sleeps
 * STALL_MILLISECONDS, as SMMUv3 stalls a faulting device's transactions: the flooder's
 * core goes back to the other devices and to the main thread, at the price of the flooder's
 * own fault rate (about two million a second, where it would raise ten). Writers on the
 * platform's own thread never sleep (the main thread is the one that unmutes).
 *
 * Fairness: one device may have at most a quarter of the ring waiting, so a device that
 * faults as fast as it can leaves room for the others' faults. Repeated identical faults
 * (same device, domain, address, direction and type) collapse into the one still waiting,
 * as SMMUv3 merges events and VT-d collapses repeated faults: a flooding device costs the
 * main thread one delivery per drain, not one per fault. Both outcomes are counted.
 */
/** Faults a muted device raises between two stalls of its worker. */
export const STALL_EVERY = 256;
/** How long a stall asks to sleep (the kernel's timer slack adds about as much). */
export const STALL_MILLISECONDS = 0.05;

export class FaultRingWriter {
  readonly #rings: FaultRings;
  /** What a stall sleeps on (nothing ever notifies it), or null where the writer may not sleep. */
  readonly #stall: Int32Array | null;
  /** Faults raised by muted devices since the last stall. */
  #mutedRaises = 0;
  /** The device context and domain tables' fields: what a record says besides the fault itself. */
  readonly #contexts: Int32Array;
  readonly #domains: Int32Array;
  readonly #header: number;
  readonly #records: number;
  readonly #mask: number;
  readonly #ints: Int32Array;
  readonly #uints: Uint32Array;
  readonly #muted: Int32Array;
  /** Records one device may have waiting in this ring. */
  readonly #share: number;
  /** Per device slot: its records in this ring that the consumer had not taken at the last look. */
  readonly #waiting: Int32Array;
  /** Ring index up to which taken records have been given back to #waiting. */
  #accounted: number;
  /** The last record this writer published (for collapsing repeats), valid while #lastIndex + 1 === write. */
  #lastIndex = -1;
  #lastDevice = -1;
  #lastDomain = 0;
  #lastSerial = 0;
  #lastAddress = -1;
  #lastFlags = 0;
  #lastType = 0;

  /** `mayStall`: this writer runs in a DMA worker, which may sleep to hold back a muted device. */
  constructor(rings: FaultRings, ring: number, contexts: DeviceContextTable, domains: DomainTable, mayStall = false) {
    const devices = contexts.capacity;
    this.#stall = mayStall && typeof SharedArrayBuffer !== 'undefined' ? new Int32Array(new SharedArrayBuffer(4)) : null;
    this.#contexts = contexts.fields;
    this.#domains = domains.fields;
    this.#rings = rings;
    this.#header = rings.headerOf(ring);
    this.#records = this.#header + RING_HEADER_INTS;
    this.#mask = rings.capacity - 1;
    this.#ints = rings.ints;
    this.#uints = rings.uints;
    this.#muted = rings.muted;
    this.#share = Math.max(1, rings.capacity >>> 2);
    this.#waiting = new Int32Array(devices);
    // Records a predecessor left in the ring are not this writer's to account for.
    this.#accounted = Atomics.load(this.#uints, this.#header + kWriteIndexField);
  }

  /**
   * The fault of `device` at `address` through `domain` (-1: none): the record takes the
   * domain's serial and the device's input mapping ID and reporting flag from the tables.
   * Returns true when the record was queued for delivery.
   */
  raiseFor(device: number, domain: number, address: number, write: boolean, type: number): boolean {
    const context = device * CONTEXT_RECORD_INTS;
    return this.raise(
      device,
      domain,
      domain >= 0 ? this.#domains[domain * DOMAIN_RECORD_INTS + kDomainSerialField]! : 0,
      address,
      write ? kFaultAddressValid | kFaultWriteNotRead : kFaultAddressValid,
      type,
      this.#contexts[context + kContextInputMappingField]!,
      (this.#contexts[context + kContextFlagsField]! & kContextFaultReporting) !== 0,
    );
  }

  /** Returns true when the record was queued for delivery. */
  raise(
    device: number,
    domain: number,
    domainSerial: number,
    address: number,
    flags: number,
    type: number,
    inputMappingId: number,
    reporting: boolean,
  ): boolean {
    const h = this.#header;
    const uints = this.#uints;
    const ints = this.#ints;
    Atomics.add(uints, h + kRaisedField, 1);
    if (this.#stall !== null && this.#muted[device] === 1 && ++this.#mutedRaises >= STALL_EVERY) {
      this.#mutedRaises = 0;
      // Waits for nothing but the timeout: no one notifies #stall (back-pressure, see above).
      Atomics.wait(this.#stall, 0, 0, STALL_MILLISECONDS);
    }
    if (!reporting) {
      Atomics.add(uints, h + kSuppressedField, 1);
      return false;
    }
    const write = uints[h + kWriteIndexField]!;
    const read = Atomics.load(uints, h + kReadIndexField);
    // Give back the share of every record the consumer has taken since the last look (their
    // slots are only rewritten by this writer, after this loop).
    let accounted = this.#accounted;
    if ((read - accounted) >>> 0 <= this.#rings.capacity) {
      while (accounted !== read) {
        const taken = ints[this.#records + (accounted & this.#mask) * FAULT_RECORD_INTS + kRecordDevice]!;
        if (this.#waiting[taken]! > 0) this.#waiting[taken]!--;
        accounted = (accounted + 1) >>> 0;
      }
      this.#accounted = accounted;
    }
    if (
      read !== write &&
      this.#lastIndex === ((write - 1) | 0) &&
      this.#lastDevice === device &&
      this.#lastAddress === address &&
      this.#lastFlags === flags &&
      this.#lastType === type &&
      this.#lastDomain === domain &&
      this.#lastSerial === domainSerial
    ) {
      // The same fault is still waiting to be delivered: this one adds nothing to it.
      Atomics.add(uints, h + kSuppressedField, 1);
      Atomics.add(uints, h + kCollapsedField, 1);
      return false;
    }
    if ((write - read) >>> 0 >= this.#rings.capacity || this.#waiting[device]! >= this.#share) {
      Atomics.add(uints, h + kDroppedField, 1);
      return false;
    }
    const at = this.#records + (write & this.#mask) * FAULT_RECORD_INTS;
    ints[at + kRecordDevice] = device;
    ints[at + kRecordDomain] = domain;
    ints[at + kRecordDomainSerial] = domainSerial;
    ints[at + kRecordAddressLow] = address % TWO_32;
    ints[at + kRecordAddressHigh] = Math.floor(address / TWO_32);
    ints[at + kRecordFlags] = flags;
    ints[at + kRecordType] = type;
    ints[at + kRecordInputMappingId] = inputMappingId;
    this.#waiting[device]!++;
    this.#lastIndex = write | 0;
    this.#lastDevice = device;
    this.#lastDomain = domain;
    this.#lastSerial = domainSerial;
    this.#lastAddress = address;
    this.#lastFlags = flags;
    this.#lastType = type;
    // Publishes the record (the plain stores above happen before it).
    Atomics.store(uints, h + kWriteIndexField, (write + 1) >>> 0);
    // Wake the main thread only if it is asleep, and only once: the first producer to flip
    // kMainWaitingField back to 0 rings the doorbell that the dispatcher's waitAsync watches.
    // A muted device (one the main thread is rate-limiting) rings nothing: the main thread
    // collects its records on its own schedule.
    if (this.#muted[device] !== 1 && Atomics.compareExchange(this.#rings.global, kMainWaitingField, 1, 0) === 1) {
      Atomics.add(this.#rings.global, kDoorbellField, 1);
      Atomics.notify(this.#rings.global, kDoorbellField);
    }
    return true;
  }
}
