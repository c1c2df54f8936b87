import type { DeviceModel } from '../device-model.js';
import { MAX_REGISTER_BYTES } from '../../hardware/function-model.js';
import type { RegisterFile } from '../../hardware/register-file.js';
import { add, NicBuffers, receive, transmit } from './nic-queues.js';
import { NIC as R, nicMacOf } from './nic-registers.js';
import { WIRE, WireQueue, wireMemoryBytes } from './nic-wire.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

export { NIC, nicErrorStatus } from './nic-registers.js';
export { WIRE, WireQueue, wireRecordBytes } from './nic-wire.js';

/** Bytes of each wire queue for the model options (`wireBytes`). */
function nicWireBytes(options: Readonly<Record<string, unknown>>): number {
  const bytes = options.wireBytes ?? WIRE.DEFAULT_BYTES;
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < WIRE.MIN_BYTES || bytes > WIRE.MAX_BYTES || (bytes & (bytes - 1)) !== 0) {
    throw new RangeError(`nic modelOptions.wireBytes must be a power of two between ${WIRE.MIN_BYTES} and ${WIRE.MAX_BYTES} (got ${String(bytes)})`);
  }
  return bytes;
}

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
 * Registers, descriptors and status words: devices/models/nic-registers.ts; the TX and RX
 * paths: devices/models/nic-queues.ts.
 */
export const nicModel: DeviceModel = createNicModel();

function createNicModel(): DeviceModel {
  // The TX and RX paths' buffers belong to this model object: one set per worker (each worker
  // loads the model once), used by one batch at a time (process() never yields).
  const buffers = new NicBuffers();
  return {
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
      if (tx !== null && (status & R.STATUS_TX_HALTED) === 0) more = transmit(context, tx.base, tx.size, loopback ? loop : null, buffers) || more;
      if (rx !== null && (registers.read32(R.STATUS) & R.STATUS_RX_HALTED) === 0) more = receive(context, rx.base, rx.size, wire, loop, buffers) || more;
      // Loopback drops happen in this batch, after the harvest above.
      add(registers, R.RX_DROPPED, loop.takeDrops());
      if (more) context.again();
    },
  };
}

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
