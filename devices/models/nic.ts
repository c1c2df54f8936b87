import { DMA_OK } from '../dma-port.js';
import type { DeviceModel, DeviceWorkContext } from '../device-model.js';
import { MAX_REGISTER_BYTES } from '../device-model.js';
import type { RegisterFile } from '../register-file.js';
import { WIRE, WireQueue, wireMemoryBytes } from './nic-wire.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

export { WIRE, WireQueue, wireRecordBytes } from './nic-wire.js';

/**
 * A network interface in the spirit of Intel's e1000/igb: a transmit and a receive ring of
 * 16-byte descriptors in guest memory, head registers the device moves and tail registers
 * (doorbells) the driver moves, statuses written back into the descriptors, and one MSI
 * vector per direction. Every access to guest memory goes through the IOMMU.
 *
 * Packets leave through TX. With CTRL.LOOPBACK they come back to this device's RX; otherwise
 * they go to the function wired to this one (PciBus.connect); with neither, they are sent
 * into nothing (TX completes normally). Between the two devices, a packet crosses through a
 * wire queue in the receiver's device-private memory (devices/models/nic-wire.ts): the
 * sender copies the bytes it read from guest memory into it and kicks the receiver, whose
 * RX moves them into receive buffers by DMA. A full wire queue drops the packet (counted in
 * the receiver's RX_DROPPED); without free receive buffers, packets wait in the queue.
 *
 * Errors: a DMA fault reading a TX buffer fails that packet (every descriptor of it gets
 * ERROR, TX_ERRORS counts it) and the device goes on with the next. A fault writing an RX
 * buffer fails that descriptor (ERROR | EOP), drops the packet (RX_ERRORS) and the next
 * packet starts at the next descriptor. A fault reading or writing a descriptor ring halts
 * that direction only (STATUS.TX_HALTED / RX_HALTED, the fault type in *_HALT_FAULT) and
 * raises its vector. Clearing CTRL.ENABLE resets the device: heads, halts, counters and
 * the queued packets (that is how a driver recovers a halted direction).
 *
 * Registers (BAR0, 4 KiB, little-endian):
 *   0x00 CTRL          RW  bit 0 ENABLE, bit 1 LOOPBACK (doorbell)
 *   0x04 STATUS        RO  bit 0 RUNNING, bit 1 TX_HALTED, bit 2 RX_HALTED,
 *                          bit 3 TX_BAD_CONFIGURATION, bit 4 RX_BAD_CONFIGURATION, bit 5 LINK
 *                          (loopback or wired)
 *   0x08 MAC_LOW       RO  MAC address bytes 0..3 (byte 0 in bits 7..0)
 *   0x0C MAC_HIGH      RO  MAC address bytes 4..5; the address is 02:7e:57:00:ss:ss (slot)
 *   0x10 TX_HALT_FAULT RO  fault type that halted TX
 *   0x14 RX_HALT_FAULT RO  fault type that halted RX
 *   0x18 TX_VECTOR     RW  MSI vector for TX completions
 *   0x1C RX_VECTOR     RW  MSI vector for received packets
 *   0x20 TX_RING_BASE  RW  IOVA of the TX ring (64-bit, 16-byte aligned)
 *   0x28 TX_RING_SIZE  RW  entries, a power of two, 2..65536
 *   0x2C TX_HEAD       RO  next descriptor the device reads
 *   0x30 TX_TAIL       RW  one past the last descriptor posted (doorbell)
 *   0x40 RX_RING_BASE  RW  IOVA of the RX ring (64-bit, 16-byte aligned)
 *   0x48 RX_RING_SIZE  RW  entries, a power of two, 2..65536
 *   0x4C RX_HEAD       RO  next receive buffer the device fills
 *   0x50 RX_TAIL       RW  one past the last buffer posted (doorbell)
 *   0x60 TX_PACKETS    RO  packets transmitted      0x64 TX_BYTES  RO  their bytes
 *   0x68 TX_ERRORS     RO  packets that failed
 *   0x6C RX_PACKETS    RO  packets received         0x70 RX_BYTES  RO  their bytes
 *   0x74 RX_DROPPED    RO  packets lost: wire queue full, or larger than the whole RX ring
 *   0x78 RX_ERRORS     RO  packets dropped because a receive buffer was unusable
 * Counters are free-running 32-bit; clearing ENABLE zeroes them.
 *
 * TX descriptor (16 bytes): 0x00 buffer IOVA (u64), 0x08 length (u16), 0x0A flags (u16:
 * bit 0 EOP, bit 1 IRQ), 0x0C status (u32, written back). A packet is the concatenation of
 * the descriptors from the head up to the one with EOP (1..16384 bytes; zero-length
 * fragments are allowed). RX descriptor (16 bytes): 0x00 buffer IOVA (u64), 0x08 buffer
 * length (u16, 0 is invalid), 0x0A reserved, 0x0C status (u32, written back). A packet longer
 * than a buffer spans several descriptors, EOP on the last.
 *
 * Status word (both rings): bit 31 DONE, bit 30 EOP (RX), bit 29 ERROR, bits 27..16 error
 * code (0x100 | fault type: DMA fault; 0x200: bad length), bits 15..0 bytes (RX: bytes
 * written into this buffer; TX: 0). Every descriptor of a failed TX packet carries the
 * packet's status. The device writes the status after the data; the driver clears it when it
 * posts the descriptor.
 *
 * Deliberately not implemented: MAC address filtering (the device is promiscuous), checksum
 * and segmentation offloads, VLANs, multiple queues, link speed or timing, interrupt
 * moderation.
 */
export const NIC = Object.freeze({
  CTRL: 0x00,
  STATUS: 0x04,
  MAC_LOW: 0x08,
  MAC_HIGH: 0x0c,
  TX_HALT_FAULT: 0x10,
  RX_HALT_FAULT: 0x14,
  TX_VECTOR: 0x18,
  RX_VECTOR: 0x1c,
  TX_RING_BASE: 0x20,
  TX_RING_SIZE: 0x28,
  TX_HEAD: 0x2c,
  TX_TAIL: 0x30,
  RX_RING_BASE: 0x40,
  RX_RING_SIZE: 0x48,
  RX_HEAD: 0x4c,
  RX_TAIL: 0x50,
  TX_PACKETS: 0x60,
  TX_BYTES: 0x64,
  TX_ERRORS: 0x68,
  RX_PACKETS: 0x6c,
  RX_BYTES: 0x70,
  RX_DROPPED: 0x74,
  RX_ERRORS: 0x78,
  CTRL_ENABLE: 0x1,
  CTRL_LOOPBACK: 0x2,
  STATUS_RUNNING: 0x1,
  STATUS_TX_HALTED: 0x2,
  STATUS_RX_HALTED: 0x4,
  STATUS_TX_BAD_CONFIGURATION: 0x8,
  STATUS_RX_BAD_CONFIGURATION: 0x10,
  STATUS_LINK: 0x20,
  DESCRIPTOR_BYTES: 16,
  TX_FLAG_EOP: 0x1,
  TX_FLAG_IRQ: 0x2,
  DESC_DONE: 0x8000_0000,
  DESC_EOP: 0x4000_0000,
  DESC_ERROR: 0x2000_0000,
  ERROR_SHIFT: 16,
  ERROR_MASK: 0x0fff_0000,
  BYTES_MASK: 0xffff,
  ERROR_DMA_FAULT: 0x100,
  ERROR_BAD_LENGTH: 0x200,
  MAX_PACKET_BYTES: 16384,
  MAX_RING_ENTRIES: 65536,
} as const);

const R = NIC;
/** Packets per direction per scheduling, so that one busy NIC cannot starve the others. */
const BATCH = 64;
const TWO_32 = 2 ** 32;

/** The status word of a failed descriptor. */
export function nicErrorStatus(code: number, eop = false): number {
  return (R.DESC_DONE | (eop ? R.DESC_EOP : 0) | R.DESC_ERROR | ((code << R.ERROR_SHIFT) & R.ERROR_MASK)) >>> 0;
}

/** The MAC address of the NIC in context slot `slot`. */
export function nicMacOf(slot: number): Uint8Array {
  return Uint8Array.of(0x02, 0x7e, 0x57, 0x00, (slot >>> 8) & 0xff, slot & 0xff);
}

/** Bytes of each wire queue for the model options (`wireBytes`). */
export function nicWireBytes(options: Readonly<Record<string, unknown>>): number {
  const bytes = options.wireBytes ?? WIRE.DEFAULT_BYTES;
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < WIRE.MIN_BYTES || bytes > WIRE.MAX_BYTES || (bytes & (bytes - 1)) !== 0) {
    throw new RangeError(`nic modelOptions.wireBytes must be a power of two between ${WIRE.MIN_BYTES} and ${WIRE.MAX_BYTES} (got ${String(bytes)})`);
  }
  return bytes;
}

// Per-worker scratch: a worker runs one batch at a time, and a batch never yields.
const packet = new Uint8Array(R.MAX_PACKET_BYTES);
let descriptorIova = new Float64Array(256);
let descriptorLength = new Int32Array(256);

function reserveDescriptors(count: number): void {
  if (descriptorIova.length >= count) return;
  const size = Math.max(count, 2 * descriptorIova.length);
  descriptorIova = new Float64Array(size);
  descriptorLength = new Int32Array(size);
}

export const nicModel: DeviceModel = {
  name: 'nic',
  vendorId: VIOMMU_VENDOR_ID,
  deviceId: 0x0030,
  classCode: 0x020000, // network controller, Ethernet
  registerBytes: 4096,
  isDoorbell: (offset) => offset === R.CTRL || offset === R.TX_TAIL || offset === R.RX_TAIL,
  privateMemoryBytes: (options) => wireMemoryBytes(nicWireBytes(options)),
  reset(registers) {
    // reset() is not told the slot; the register arena gives each slot MAX_REGISTER_BYTES.
    setMac(registers, registers.words.byteOffset / MAX_REGISTER_BYTES);
  },
  process(context) {
    const registers = context.registers;
    const control = registers.read32(R.CTRL);
    const wire = WireQueue.of(context.privateMemory, WIRE.QUEUE_WIRE);
    const loop = WireQueue.of(context.privateMemory, WIRE.QUEUE_LOOPBACK);
    if (wire === null || loop === null) throw new Error(`nic ${context.slot}: device-private memory has no wire-queue layout`);
    setMac(registers, context.slot);
    if ((control & R.CTRL_ENABLE) === 0) {
      // Disabled: the device resets, and packets that reached it are lost uncounted.
      wire.discardAll();
      loop.discardAll();
      wire.takeDrops();
      loop.takeDrops();
      for (const offset of [R.STATUS, R.TX_HALT_FAULT, R.RX_HALT_FAULT, R.TX_HEAD, R.RX_HEAD]) registers.set32(offset, 0);
      for (let offset = R.TX_PACKETS; offset <= R.RX_ERRORS; offset += 4) registers.set32(offset, 0);
      return;
    }
    const loopback = (control & R.CTRL_LOOPBACK) !== 0;
    let status = registers.read32(R.STATUS) | R.STATUS_RUNNING;
    status = loopback || context.peer >= 0 ? status | R.STATUS_LINK : status & ~R.STATUS_LINK;
    const tx = ringOf(registers, R.TX_RING_BASE, R.TX_RING_SIZE);
    const rx = ringOf(registers, R.RX_RING_BASE, R.RX_RING_SIZE);
    status = tx === null ? status | R.STATUS_TX_BAD_CONFIGURATION : status & ~R.STATUS_TX_BAD_CONFIGURATION;
    status = rx === null ? status | R.STATUS_RX_BAD_CONFIGURATION : status & ~R.STATUS_RX_BAD_CONFIGURATION;
    registers.set32(R.STATUS, status);
    add(registers, R.RX_DROPPED, wire.takeDrops() + loop.takeDrops());
    let more = false;
    if (tx !== null && (status & R.STATUS_TX_HALTED) === 0) more = transmit(context, tx.base, tx.size, loopback ? loop : null) || more;
    if (rx !== null && (registers.read32(R.STATUS) & R.STATUS_RX_HALTED) === 0) more = receive(context, rx.base, rx.size, wire, loop) || more;
    // Loopback drops happen in this batch, after the harvest above.
    add(registers, R.RX_DROPPED, loop.takeDrops());
    if (more) context.again();
  },
};

function setMac(registers: RegisterFile, slot: number): void {
  const mac = nicMacOf(slot);
  registers.set32(R.MAC_LOW, mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24));
  registers.set32(R.MAC_HIGH, mac[4]! | (mac[5]! << 8));
}

function ringOf(registers: RegisterFile, baseOffset: number, sizeOffset: number): { base: number; size: number } | null {
  const size = registers.read32(sizeOffset);
  const base = registers.read64(baseOffset);
  if (size < 2 || size > R.MAX_RING_ENTRIES || (size & (size - 1)) !== 0 || base % R.DESCRIPTOR_BYTES !== 0) return null;
  return { base, size };
}

function add(registers: RegisterFile, offset: number, value: number): void {
  if (value !== 0) registers.set32(offset, (registers.read32(offset) + value) % TWO_32);
}

/**
 * Sends up to BATCH packets from the TX ring; true if packets are left. `loop` is the
 * device's own loopback queue, or null to send to the wired peer.
 */
function transmit(context: DeviceWorkContext, ring: number, size: number, loop: WireQueue | null): boolean {
  const { registers, port } = context;
  let head = registers.read32(R.TX_HEAD) % size;
  const tail = registers.read32(R.TX_TAIL) % size;
  const peer = loop === null && context.peer >= 0 ? context.peer : -1;
  const peerMemory = peer >= 0 ? context.privateMemoryOf(peer) : null;
  const destination = loop ?? (peerMemory === null ? null : WireQueue.of(peerMemory, WIRE.QUEUE_WIRE));
  let sent = 0;
  let wantInterrupt = false;
  let kickPeer = false;
  let fault = DMA_OK;
  reserveDescriptors(size);
  packets: while (head !== tail && sent < BATCH) {
    // The packet: descriptors from the head up to EOP.
    let count = 0;
    let total = 0;
    let endOfPacket = false;
    let interrupt = false;
    while ((head + count) % size !== tail) {
      const at = ring + ((head + count) % size) * R.DESCRIPTOR_BYTES;
      const iova = port.readU64(at);
      const word = port.readU32(at + 8);
      if (port.lastResult !== DMA_OK) {
        fault = port.lastResult;
        break packets;
      }
      descriptorIova[count] = iova;
      descriptorLength[count] = word & 0xffff;
      total += word & 0xffff;
      count++;
      if (((word >>> 16) & R.TX_FLAG_IRQ) !== 0) interrupt = true;
      if (((word >>> 16) & R.TX_FLAG_EOP) !== 0) {
        endOfPacket = true;
        break;
      }
    }
    // The rest of the packet is not posted yet, unless the packet fills the whole ring.
    if (!endOfPacket && count < size - 1) break;
    let error = 0;
    if (!endOfPacket || total === 0 || total > R.MAX_PACKET_BYTES) {
      error = R.ERROR_BAD_LENGTH;
    } else {
      let offset = 0;
      for (let i = 0; i < count && error === 0; i++) {
        const length = descriptorLength[i]!;
        if (length === 0) continue;
        const result = port.read(descriptorIova[i]!, length, packet, offset);
        if (result !== DMA_OK) error = R.ERROR_DMA_FAULT | result;
        offset += length;
      }
    }
    if (error === 0 && destination !== null) {
      destination.push(packet, 0, total, context.slot);
      if (destination !== loop) kickPeer = true;
    }
    const status = error === 0 ? R.DESC_DONE : nicErrorStatus(error);
    for (let i = 0; i < count; i++) {
      port.writeU32(ring + ((head + i) % size) * R.DESCRIPTOR_BYTES + 12, status);
      if (port.lastResult !== DMA_OK) {
        fault = port.lastResult;
        break packets;
      }
    }
    head = (head + count) % size;
    registers.set32(R.TX_HEAD, head);
    if (error === 0) {
      add(registers, R.TX_PACKETS, 1);
      add(registers, R.TX_BYTES, total);
    } else {
      add(registers, R.TX_ERRORS, 1);
    }
    if (interrupt || error !== 0) wantInterrupt = true;
    sent++;
  }
  // Even a halted TX has handed what it sent to the peer.
  if (kickPeer) context.kick(peer);
  if (fault !== DMA_OK) return halt(context, R.STATUS_TX_HALTED, R.TX_HALT_FAULT, R.TX_VECTOR, fault);
  if (wantInterrupt) context.raise(registers.read32(R.TX_VECTOR));
  return head !== tail && sent === BATCH;
}

/**
 * Moves up to BATCH packets from the wire queues into receive buffers; true if it stopped
 * with packets and buffers left. Without enough posted buffers for the next packet it stops
 * and waits for RX_TAIL.
 */
function receive(context: DeviceWorkContext, ring: number, size: number, wire: WireQueue, loop: WireQueue): boolean {
  const { registers, port } = context;
  let head = registers.read32(R.RX_HEAD) % size;
  const tail = registers.read32(R.RX_TAIL) % size;
  let received = 0;
  let wantInterrupt = false;
  let starved = false;
  let fault = DMA_OK;
  let turn = 0;
  reserveDescriptors(size);
  packets: while (received < BATCH) {
    // Alternate between the queues so that neither source starves the other.
    let queue = turn === 0 ? wire : loop;
    let length = queue.peekLength();
    if (length < 0) {
      queue = queue === wire ? loop : wire;
      length = queue.peekLength();
      if (length < 0) break;
    }
    turn = queue === wire ? 1 : 0;
    const available = (tail - head + size) % size;
    let count = 0;
    let capacity = 0;
    let badAt = -1;
    while (capacity < length && count < available) {
      const at = ring + ((head + count) % size) * R.DESCRIPTOR_BYTES;
      const iova = port.readU64(at);
      const bytes = port.readU32(at + 8) & 0xffff;
      if (port.lastResult !== DMA_OK) {
        fault = port.lastResult;
        break packets;
      }
      descriptorIova[count] = iova;
      descriptorLength[count] = bytes;
      capacity += bytes;
      count++;
      if (bytes === 0) {
        badAt = count - 1;
        break;
      }
    }
    if (badAt < 0 && capacity < length) {
      if (available === size - 1) {
        // Even the whole ring cannot hold it: it would block the queue forever.
        queue.skip();
        add(registers, R.RX_DROPPED, 1);
        received++;
        continue;
      }
      starved = true;
      break;
    }
    queue.pop(packet);
    let offset = 0;
    let used = count;
    let error = 0;
    for (let i = 0; i < count; i++) {
      const chunk = Math.min(descriptorLength[i]!, length - offset);
      if (i === badAt) error = R.ERROR_BAD_LENGTH;
      else {
        const result = port.write(descriptorIova[i]!, packet, offset, chunk);
        if (result !== DMA_OK) error = R.ERROR_DMA_FAULT | result;
      }
      const status = error !== 0 ? nicErrorStatus(error, true) : (R.DESC_DONE | (offset + chunk === length ? R.DESC_EOP : 0) | chunk) >>> 0;
      port.writeU32(ring + ((head + i) % size) * R.DESCRIPTOR_BYTES + 12, status);
      if (port.lastResult !== DMA_OK) {
        fault = port.lastResult;
        break packets;
      }
      if (error !== 0) {
        used = i + 1;
        break;
      }
      offset += chunk;
    }
    head = (head + used) % size;
    registers.set32(R.RX_HEAD, head);
    if (error === 0) {
      add(registers, R.RX_PACKETS, 1);
      add(registers, R.RX_BYTES, length);
    } else {
      add(registers, R.RX_ERRORS, 1);
    }
    wantInterrupt = true;
    received++;
  }
  if (fault !== DMA_OK) return halt(context, R.STATUS_RX_HALTED, R.RX_HALT_FAULT, R.RX_VECTOR, fault);
  if (wantInterrupt) context.raise(registers.read32(R.RX_VECTOR));
  return !starved && received === BATCH && (wire.peekLength() >= 0 || loop.peekLength() >= 0);
}

/** Stops one direction after a descriptor-ring fault and tells the driver. */
function halt(context: DeviceWorkContext, bit: number, faultOffset: number, vectorOffset: number, fault: number): false {
  const registers = context.registers;
  registers.set32(faultOffset, fault);
  registers.set32(R.STATUS, registers.read32(R.STATUS) | bit);
  context.raise(registers.read32(vectorOffset));
  return false;
}
