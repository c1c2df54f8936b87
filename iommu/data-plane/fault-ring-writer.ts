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
  kSuppressedField,
  kWriteIndexField,
  RING_HEADER_INTS,
} from '../shared-memory/fault-rings.js';

/**
 * The producer end of one worker's fault ring (layout in shared/fault-rings.ts). `raise`
 * never blocks and never allocates: it writes a record, or counts a drop when the ring is
 * full, or counts a suppressed fault when the device's reporting is off.
 */
export class FaultRingWriter {
  readonly #rings: FaultRings;
  readonly #header: number;
  readonly #records: number;
  readonly #mask: number;
  readonly #ints: Int32Array;
  readonly #uints: Uint32Array;

  constructor(rings: FaultRings, ring: number) {
    this.#rings = rings;
    this.#header = rings.headerOf(ring);
    this.#records = this.#header + RING_HEADER_INTS;
    this.#mask = rings.capacity - 1;
    this.#ints = rings.ints;
    this.#uints = rings.uints;
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
    Atomics.add(uints, h + kRaisedField, 1);
    if (!reporting) {
      Atomics.add(uints, h + kSuppressedField, 1);
      return false;
    }
    const write = uints[h + kWriteIndexField]!;
    if ((write - Atomics.load(uints, h + kReadIndexField)) >>> 0 >= this.#rings.capacity) {
      Atomics.add(uints, h + kDroppedField, 1);
      return false;
    }
    const at = this.#records + (write & this.#mask) * FAULT_RECORD_INTS;
    const ints = this.#ints;
    ints[at + kRecordDevice] = device;
    ints[at + kRecordDomain] = domain;
    ints[at + kRecordDomainSerial] = domainSerial;
    ints[at + kRecordAddressLow] = address % 4294967296;
    ints[at + kRecordAddressHigh] = Math.floor(address / 4294967296);
    ints[at + kRecordFlags] = flags;
    ints[at + kRecordType] = type;
    ints[at + kRecordInputMappingId] = inputMappingId;
    // Publishes the record (the plain stores above happen before it).
    Atomics.store(uints, h + kWriteIndexField, (write + 1) >>> 0);
    // Wake the main thread only if it is asleep, and only once: the first producer to flip
    // kMainWaitingField back to 0 rings the doorbell that the dispatcher's waitAsync watches.
    if (Atomics.compareExchange(this.#rings.global, kMainWaitingField, 1, 0) === 1) {
      Atomics.add(this.#rings.global, kDoorbellField, 1);
      Atomics.notify(this.#rings.global, kDoorbellField);
    }
    return true;
  }
}
