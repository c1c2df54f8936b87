import { TWO_32 } from '../../base/numbers.js';
import { DMA_OK } from '../../iommu/data-plane/dma-port.js';
import type { DeviceWorkContext } from '../device-model.js';
import type { RegisterFile } from '../../hardware/register-file.js';
import { NIC as R, nicErrorStatus } from './nic-registers.js';
import { WIRE, WireQueue } from './nic-wire.js';

/**
 * The 'nic' model's data paths (worker side): transmit from the TX ring, receive into the RX
 * ring. They keep no state of their own: what a batch needs in between (the packet's bytes,
 * its descriptors) is in the NicBuffers the model hands them.
 */

/** Packets per direction per scheduling, so that one busy NIC cannot starve the others. */
const BATCH = 64;

/** The bytes of the packet in flight and the descriptors that carry it, reused from batch to batch. */
export class NicBuffers {
  readonly packet = new Uint8Array(R.MAX_PACKET_BYTES);
  descriptorIova = new Float64Array(256);
  descriptorLength = new Int32Array(256);

  /** Makes room for a packet of `count` descriptors (a packet may fill the whole ring). */
  reserve(count: number): void {
    if (this.descriptorIova.length >= count) return;
    const size = Math.max(count, 2 * this.descriptorIova.length);
    this.descriptorIova = new Float64Array(size);
    this.descriptorLength = new Int32Array(size);
  }
}

/** Adds `value` to a free-running 32-bit counter register. */
export function add(registers: RegisterFile, offset: number, value: number): void {
  if (value !== 0) registers.set32(offset, (registers.read32(offset) + value) % TWO_32);
}

/**
 * Sends up to BATCH packets from the TX ring; true if packets are left. `loop` is the
 * device's own loopback queue, or null to send to the wired peer.
 */
export function transmit(context: DeviceWorkContext, ring: number, size: number, loop: WireQueue | null, buffers: NicBuffers): boolean {
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
  buffers.reserve(size);
  const { packet, descriptorIova, descriptorLength } = buffers;
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
export function receive(context: DeviceWorkContext, ring: number, size: number, wire: WireQueue, loop: WireQueue, buffers: NicBuffers): boolean {
  const { registers, port } = context;
  let head = registers.read32(R.RX_HEAD) % size;
  const tail = registers.read32(R.RX_TAIL) % size;
  let received = 0;
  let wantInterrupt = false;
  let starved = false;
  let fault = DMA_OK;
  let turn = 0;
  buffers.reserve(size);
  const { packet, descriptorIova, descriptorLength } = buffers;
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
