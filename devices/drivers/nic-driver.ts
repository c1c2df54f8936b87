import { Errors } from '../../base/errors.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import { IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE } from '../../base/enums.js';
import { NIC as R } from '../models/nic.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import type { DriverHost } from './driver-host.js';
import { DriverBase, type MappedBuffer } from './driver-base.js';
import {
  bufferBytes,
  type DmaBuffer,
  haltsOf,
  type InFlightSend,
  macOf,
  type NicDriverOptions,
  type NicSendOptions,
  type NicStats,
  type PendingSend,
  ringEntries,
  splitFragments,
  statsOf,
  writeDescriptor,
  writeGuest,
} from './nic-driver-support.js';
import { ReceivedPackets } from './nic-received-packets.js';

export type { NicDriverOptions, NicSendOptions, NicStats } from './nic-driver-support.js';

/**
 * The driver of the 'nic' model (devices/models/nic.ts), written against the V2 table and
 * the platform surface only (through DriverBase): rings in a reserved logical range, one
 * read-only mapping per TX ring entry (send copies packets into it) and one write-only
 * mapping per receive buffer. TX completions and received packets are reaped in the MSI
 * handler; receive buffers are posted again as soon as their packet is reassembled.
 *
 * Each data buffer starts BUFFER_OFFSET bytes into its own mapping, so the device's
 * addresses are not page-aligned and the bytes around a buffer can be checked untouched.
 */
export class NicDriver extends DriverBase {
  static readonly BUFFER_OFFSET = 64;
  readonly txEntries: number;
  readonly rxEntries: number;
  readonly txBufferBytes: number;
  readonly rxBufferBytes: number;
  readonly #options: NicDriverOptions;
  readonly #txVector: number;
  readonly #rxVector: number;
  #txRing!: MappedBuffer;
  #rxRing!: MappedBuffer;
  #txSlots: DmaBuffer[] = [];
  #rxBuffers: DmaBuffer[] = [];
  /** Which buffer each RX ring entry holds while posted. */
  #rxPosted: (DmaBuffer | null)[] = [];
  #rxFree: DmaBuffer[] = [];
  readonly #bufferPages: number[] = [];
  /** Free-running descriptor counts: posted, and reaped. */
  #txTail = 0;
  #txReaped = 0;
  #rxTail = 0;
  #rxNext = 0;
  #backlog: PendingSend[] = [];
  #inFlight: InFlightSend[] = [];
  #doorbellQueued = false;
  #refillQueued = false;
  readonly #packets: ReceivedPackets;
  #running = false;
  /** Driver-side counts: packets sent (resolved), of which failed; packets delivered, chains dropped with ERROR; RX descriptors reaped. */
  txCompleted = 0;
  txFailed = 0;
  rxDelivered = 0;
  rxFailed = 0;
  rxDescriptors = 0;
  /** Status of the last failed RX chain's last descriptor. */
  lastRxError = 0;

  constructor(platform: DriverHost, fn: PciFunction, options: NicDriverOptions = {}) {
    super(platform, fn);
    if (fn.model !== 'nic') throw Errors.WrongDeviceModel('fn', fn.bdf, fn.model, 'nic');
    this.txEntries = ringEntries('txEntries', options.txEntries ?? 64);
    this.rxEntries = ringEntries('rxEntries', options.rxEntries ?? 64);
    this.txBufferBytes = bufferBytes('txBufferBytes', options.txBufferBytes ?? 2048);
    this.rxBufferBytes = bufferBytes('rxBufferBytes', options.rxBufferBytes ?? 2048);
    const rxBuffers = options.rxBuffers ?? this.rxEntries - 1;
    if (!Number.isInteger(rxBuffers) || rxBuffers < 1 || rxBuffers > this.rxEntries - 1) {
      throw Errors.OptionOutOfRange('rxBuffers', `an integer in 1..${this.rxEntries - 1}`, rxBuffers);
    }
    this.#options = { ...options, rxBuffers };
    this.#packets = new ReceivedPackets(options.onPacket);
    this.#txVector = options.txVector ?? 1;
    this.#rxVector = options.rxVector ?? 2;
  }

  /**
   * Sets the device up: resets it, then domain, rings, buffers, registers, interrupts, and
   * enables it with the receive buffers posted.
   */
  async start(): Promise<this> {
    if (this.#running) throw Errors.DriverAlreadyStarted('NIC');
    const registers = this.fn.registers!;
    // A device left enabled by someone else resets before it gets new rings.
    registers.write32(R.CTRL, 0);
    await this.platform.devicesIdle();
    this.attach([this.txEntries * R.DESCRIPTOR_BYTES, this.rxEntries * R.DESCRIPTOR_BYTES]);
    this.#txRing = this.ring(this.txEntries * R.DESCRIPTOR_BYTES);
    this.#rxRing = this.ring(this.rxEntries * R.DESCRIPTOR_BYTES);
    this.#txSlots = Array.from({ length: this.txEntries }, () => this.#buffer(this.txBufferBytes, IOMMU_ACCESS_READ));
    this.#rxBuffers = Array.from({ length: this.#options.rxBuffers! }, () => this.#buffer(this.rxBufferBytes, IOMMU_ACCESS_WRITE));
    this.#rxFree = [...this.#rxBuffers];
    this.#rxPosted = new Array<DmaBuffer | null>(this.rxEntries).fill(null);
    registers.write64(R.TX_RING_BASE, this.#txRing.iova);
    registers.write32(R.TX_RING_SIZE, this.txEntries);
    registers.write32(R.TX_TAIL, 0);
    registers.write64(R.RX_RING_BASE, this.#rxRing.iova);
    registers.write32(R.RX_RING_SIZE, this.rxEntries);
    registers.write32(R.RX_TAIL, 0);
    registers.write32(R.TX_VECTOR, this.#txVector);
    registers.write32(R.RX_VECTOR, this.#rxVector);
    this.fn.setInterruptHandler((vector) => this.#interrupt(vector));
    this.#running = true;
    this.postRxBuffers(this.#options.postRxBuffers ?? Infinity);
    registers.write32(R.CTRL, R.CTRL_ENABLE | (this.#options.loopback === true ? R.CTRL_LOOPBACK : 0));
    return this;
  }

  /** The device's MAC address, "02:7e:57:…". */
  get mac(): string {
    return macOf(this.fn.registers!);
  }

  /** The device's counters. */
  stats(): NicStats {
    return statsOf(this.fn.registers!);
  }

  /** Whether a direction halted on a descriptor-ring fault, and the fault types. */
  get halted(): { tx: boolean; rx: boolean; txFault: number; rxFault: number } {
    return haltsOf(this.fn.registers!);
  }

  /** Receive buffers' current mappings (each starts BUFFER_OFFSET bytes in). */
  get rxBufferMappings(): readonly MappedBuffer[] {
    return this.#rxBuffers.map((buffer) => buffer.mapping);
  }

  /** TX buffers' current mappings, by ring entry. */
  get txBufferMappings(): readonly MappedBuffer[] {
    return this.#txSlots.map((buffer) => buffer.mapping);
  }

  /** Sends waiting for ring space, and sends posted and not completed. */
  get txPending(): { backlog: number; inFlight: number } {
    return { backlog: this.#backlog.length, inFlight: this.#inFlight.length };
  }

  /** Receive buffers posted to the device now. */
  get rxPostedCount(): number {
    return this.#rxTail - this.#rxNext;
  }

  /**
   * Queues a packet; resolves with the status the device wrote back for it (NIC.DESC_DONE
   * alone on success; DESC_DONE | DESC_ERROR | code << 16 on failure). The bytes are copied
   * at once. Packets are posted in order as ring entries free up; the length is the
   * device's to judge.
   */
  send(bytes: Uint8Array, options: NicSendOptions = {}): Promise<number> {
    if (!this.#running) return Promise.reject(Errors.DriverNotStarted('NIC'));
    if (!(bytes instanceof Uint8Array)) return Promise.reject(Errors.InvalidArgument('bytes', 'a Uint8Array', bytes));
    let lengths: number[];
    try {
      lengths = splitFragments(bytes.length, options.fragments, this.txBufferBytes, this.txEntries - 1);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const fragments: Uint8Array[] = [];
    let offset = 0;
    for (const length of lengths) {
      fragments.push(bytes.slice(offset, offset + length));
      offset += length;
    }
    return new Promise<number>((resolve, reject) => {
      this.#backlog.push({ fragments, resolve, reject });
      this.#pump();
    });
  }

  /** The next packet received (when no onPacket callback is installed). */
  receive(): Promise<Uint8Array> {
    return this.#packets.next(this.#running) ?? Promise.reject(Errors.DriverNotStarted('NIC'));
  }

  /** Packets received and not yet taken by receive(). */
  get receivedQueued(): number {
    return this.#packets.queued;
  }

  /** Posts up to `count` free receive buffers (the ring keeps one entry empty); how many it posted. */
  postRxBuffers(count = Infinity): number {
    if (!this.#running) return 0;
    const memory = this.platform.memory;
    let posted = 0;
    while (posted < count && this.#rxFree.length > 0 && this.#rxTail - this.#rxNext < this.rxEntries - 1) {
      const buffer = this.#rxFree.shift()!;
      const index = this.#rxTail % this.rxEntries;
      this.#rxPosted[index] = buffer;
      writeDescriptor(memory, this.#rxRing.physical(index * R.DESCRIPTOR_BYTES), buffer.mapping.iova + NicDriver.BUFFER_OFFSET, this.rxBufferBytes);
      this.#rxTail++;
      posted++;
    }
    // The doorbell publishes the descriptors written above.
    if (posted > 0) this.fn.registers!.write32(R.RX_TAIL, this.#rxTail % this.rxEntries);
    return posted;
  }

  /**
   * Fault injection: unmaps the buffer of the TX ring entry `ahead` descriptors past the
   * next one to be posted, as a buggy driver would. The descriptor posted there reads an
   * unmapped IOVA; the driver maps the buffer again when that descriptor completes.
   * Returns the mapping that was removed.
   */
  revokeTxBuffer(ahead = 0): MappedBuffer {
    if (!Number.isInteger(ahead) || ahead < 0 || this.#txTail - this.#txReaped + ahead >= this.txEntries) {
      throw Errors.ArgumentOutOfRange(
        'ahead',
        `the distance to a TX entry neither in flight nor beyond the ring (0..${this.txEntries - 1 - (this.#txTail - this.#txReaped)})`,
        ahead,
      );
    }
    return this.#revoke(this.#txSlots[(this.#txTail + ahead) % this.txEntries]!);
  }

  /**
   * Fault injection: unmaps the posted receive buffer `ahead` entries past the next one the
   * device fills. The device's write into it faults; the driver maps it again when reaped.
   */
  revokeRxBuffer(ahead = 0): MappedBuffer {
    const posted = this.#rxTail - this.#rxNext;
    if (!Number.isInteger(ahead) || ahead < 0 || ahead >= posted) {
      throw Errors.ArgumentOutOfRange('ahead', `the distance to a posted receive buffer (${posted === 0 ? 'none is posted' : `0..${posted - 1}`})`, ahead);
    }
    return this.#revoke(this.#rxPosted[(this.#rxNext + ahead) % this.rxEntries]!);
  }

  /** Reaps TX completions (the MSI handler does this); how many descriptors. */
  reapTx(): number {
    const memory = this.platform.memory;
    let reaped = 0;
    while (this.#txReaped < this.#txTail) {
      const index = this.#txReaped % this.txEntries;
      const status = memory.readU32(this.#txRing.physical(index * R.DESCRIPTOR_BYTES + 12));
      if ((status & R.DESC_DONE) === 0) break;
      const slot = this.#txSlots[index]!;
      if (slot.revoked) this.#remap(slot, IOMMU_ACCESS_READ);
      const send = this.#inFlight[0];
      if (send !== undefined && send.last === this.#txReaped) {
        this.#inFlight.shift();
        this.txCompleted++;
        if ((status & R.DESC_ERROR) !== 0) this.txFailed++;
        send.resolve(status);
      }
      this.#txReaped++;
      reaped++;
    }
    this.#pump();
    return reaped;
  }

  /** Reaps received packets and posts their buffers again (the MSI handler does this); how many descriptors. */
  reapRx(): number {
    const memory = this.platform.memory;
    let reaped = 0;
    while (this.#rxNext < this.#rxTail) {
      const index = this.#rxNext % this.rxEntries;
      const status = memory.readU32(this.#rxRing.physical(index * R.DESCRIPTOR_BYTES + 12));
      if ((status & R.DESC_DONE) === 0) break;
      const buffer = this.#rxPosted[index]!;
      this.#rxPosted[index] = null;
      this.#rxNext++;
      reaped++;
      this.rxDescriptors++;
      this.#packets.addDescriptor(status, memory, buffer.mapping, NicDriver.BUFFER_OFFSET);
      if (buffer.revoked) this.#remap(buffer, IOMMU_ACCESS_WRITE);
      this.#rxFree.push(buffer);
      if ((status & R.DESC_EOP) !== 0) this.#endOfPacket();
    }
    if (reaped > 0) this.#scheduleRefill();
    return reaped;
  }

  /**
   * Stops the device and releases everything: disables it, waits until no device has work,
   * fails sends and receive() calls still waiting, unmaps every buffer, detaches, and
   * returns every page it allocated.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    await this.platform.devicesIdle();
    this.reapTx();
    this.reapRx();
    this.#running = false;
    this.fn.registers!.write32(R.CTRL, 0);
    await this.platform.devicesIdle();
    this.fn.setInterruptHandler(null);
    const stopped = () => Errors.DriverStopped('NIC');
    for (const send of [...this.#inFlight.splice(0), ...this.#backlog.splice(0)]) send.reject(stopped());
    this.#packets.failWaiting(stopped);
    this.detach();
    this.platform.memory.freePages(this.#bufferPages.splice(0));
    this.#txSlots = [];
    this.#rxBuffers = [];
    this.#rxFree = [];
    this.#rxPosted = [];
  }

  #interrupt(vector: number): void {
    if (vector === this.#txVector) this.reapTx();
    if (vector === this.#rxVector) this.reapRx();
  }

  /** Posts waiting sends, in order, while the ring has room; one doorbell for all posted in this turn. */
  #pump(): void {
    if (!this.#running) return;
    const memory = this.platform.memory;
    let posted = false;
    while (this.#backlog.length > 0) {
      const send = this.#backlog[0]!;
      if (this.#txTail - this.#txReaped + send.fragments.length > this.txEntries - 1) break;
      this.#backlog.shift();
      send.fragments.forEach((fragment, i) => {
        const index = this.#txTail % this.txEntries;
        const slot = this.#txSlots[index]!;
        writeGuest(memory, slot.mapping, NicDriver.BUFFER_OFFSET, fragment);
        const word = fragment.length | ((i === send.fragments.length - 1 ? R.TX_FLAG_EOP | R.TX_FLAG_IRQ : 0) << 16);
        writeDescriptor(memory, this.#txRing.physical(index * R.DESCRIPTOR_BYTES), slot.mapping.iova + NicDriver.BUFFER_OFFSET, word);
        this.#txTail++;
      });
      this.#inFlight.push({ ...send, last: this.#txTail - 1 });
      posted = true;
    }
    if (posted && !this.#doorbellQueued) {
      // Sends queued in the same turn share one doorbell (one device batch), as with xmit_more.
      this.#doorbellQueued = true;
      queueMicrotask(() => {
        this.#doorbellQueued = false;
        if (this.#running) this.fn.registers!.write32(R.TX_TAIL, this.#txTail % this.txEntries);
      });
    }
  }

  /**
   * Posts the reaped buffers again from a microtask (a DPC, so to speak), once for all the
   * reaping of this turn: one RX_TAIL doorbell for the buffers of every packet reaped. Ringing
   * it from the MSI handler would be safe too: the scheduler keeps the device in flight while
   * it delivers the batch's interrupts, so the doorbell only marks work pending and the device
   * runs again after the batch, never beside it (DeviceScheduler#finished).
   */
  #scheduleRefill(): void {
    if (this.#refillQueued) return;
    this.#refillQueued = true;
    queueMicrotask(() => {
      this.#refillQueued = false;
      this.postRxBuffers();
    });
  }

  #endOfPacket(): void {
    const error = this.#packets.endPacket();
    if (error !== 0) {
      this.rxFailed++;
      this.lastRxError = error;
      return;
    }
    this.rxDelivered++;
    this.#packets.deliver();
  }

  /** Allocates pages for a data buffer (guards on both sides) and maps them with `access`. */
  #buffer(bytes: number, access: number): DmaBuffer {
    const pages = Math.ceil((bytes + 2 * NicDriver.BUFFER_OFFSET) / PAGE_SIZE);
    const pfns = this.platform.memory.allocatePages(pages);
    this.#bufferPages.push(...pfns);
    return { pfns, mapping: this.mapBuffer(pfns, access), revoked: false };
  }

  #revoke(buffer: DmaBuffer): MappedBuffer {
    if (buffer.revoked) throw Errors.BufferAlreadyUnmapped("that ring entry's buffer");
    this.unmapBuffer(buffer.mapping);
    buffer.revoked = true;
    return buffer.mapping;
  }

  #remap(buffer: DmaBuffer, access: number): void {
    buffer.mapping = this.mapBuffer(buffer.pfns, access);
    buffer.revoked = false;
  }
}
