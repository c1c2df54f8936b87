import { DMA_OK } from '../../iommu/data-plane/dma-port.js';
import type { DeviceModel, DeviceWorkContext } from '../device-model.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

/**
 * A DMA copy engine in the spirit of Intel I/OAT (QuickData): the driver posts descriptors
 * {source, destination, length, flags, cookie} in a ring in guest memory and moves the tail;
 * the device copies (or fills), writes a completion record per descriptor into a completion
 * ring, advances the head and raises its MSI when asked. Every access goes through the IOMMU.
 *
 * A fault while copying fails that descriptor only (its completion carries the fault) and
 * the device goes on with the next. A fault while reading a descriptor or writing a
 * completion halts the channel (STATUS.HALTED, HALT_FAULT), as a real engine would.
 *
 * Registers (BAR0, 4 KiB, little-endian):
 *   0x00 CAPABILITIES  RO  version 1.0, ring entries up to 65536
 *   0x08 RING_BASE     RW  IOVA of the descriptor ring (64-bit, 32-byte aligned)
 *   0x10 RING_SIZE     RW  entries, a power of two, 2..65536
 *   0x14 CONTROL       RW  bit 0 ENABLE, bit 1 INTERRUPTS; clearing ENABLE resets the channel
 *   0x18 STATUS        RO  bit 0 RUNNING, bit 1 HALTED, bit 2 BAD_CONFIGURATION
 *   0x1C HALT_FAULT    RO  fault type that halted the channel
 *   0x20 COMPLETIONS   RW  IOVA of the completion ring (64-bit; RING_SIZE entries of 16 bytes)
 *   0x28 HEAD          RO  next descriptor the device takes
 *   0x2C TAIL          RW  the driver's producer index (doorbell)
 *   0x30 COMPLETED     RO  descriptors completed (free-running)
 *   0x34 FAILED        RO  descriptors completed with an error (free-running)
 *   0x38 MSI_VECTOR    RW  vector raised on completions
 *
 * Descriptor (32 bytes): 0x00 source IOVA (fill: the fill byte), 0x08 destination IOVA,
 * 0x10 length (bytes, 1..16 MiB), 0x14 flags (bit 0 INTERRUPT, bit 1 FILL), 0x18 cookie.
 * Completion (16 bytes): 0x00 cookie, 0x08 status (bit 31 phase, which flips on each pass
 * over the ring; bits 15..0: 0 done, 0x100 | fault type for a DMA fault, 0x200 bad length),
 * 0x0C bytes transferred.
 */
export const COPY_ENGINE = Object.freeze({
  CAPABILITIES: 0x00,
  RING_BASE: 0x08,
  RING_SIZE: 0x10,
  CONTROL: 0x14,
  STATUS: 0x18,
  HALT_FAULT: 0x1c,
  COMPLETIONS: 0x20,
  HEAD: 0x28,
  TAIL: 0x2c,
  COMPLETED: 0x30,
  FAILED: 0x34,
  MSI_VECTOR: 0x38,
  CONTROL_ENABLE: 0x1,
  CONTROL_INTERRUPTS: 0x2,
  STATUS_RUNNING: 0x1,
  STATUS_HALTED: 0x2,
  STATUS_BAD_CONFIGURATION: 0x4,
  DESCRIPTOR_BYTES: 32,
  COMPLETION_BYTES: 16,
  FLAG_INTERRUPT: 0x1,
  FLAG_FILL: 0x2,
  COMPLETION_PHASE: 0x8000_0000,
  STATUS_DMA_FAULT: 0x100,
  STATUS_BAD_LENGTH: 0x200,
  MAX_LENGTH: 16 * 1024 * 1024,
} as const);

/** Descriptors handled per scheduling, so that one busy engine cannot starve the others. */
const BATCH = 256;
const R = COPY_ENGINE;

export const copyEngineModel: DeviceModel = {
  name: 'copy-engine',
  vendorId: VIOMMU_VENDOR_ID,
  deviceId: 0x0010,
  classCode: 0x088000, // base system peripheral, other
  registerBytes: 4096,
  isDoorbell: (offset) => offset === R.TAIL || offset === R.CONTROL,
  privateMemoryBytes: () => 0,
  reset(registers) {
    registers.set32(R.CAPABILITIES, 0x0001_0010);
  },
  process(context) {
    const registers = context.registers;
    const control = registers.read32(R.CONTROL);
    let status = registers.read32(R.STATUS);
    if ((control & R.CONTROL_ENABLE) === 0) {
      // Disabled: the channel resets (this is how a driver recovers a halted channel).
      registers.set32(R.STATUS, 0);
      registers.set32(R.HALT_FAULT, 0);
      registers.set32(R.HEAD, 0);
      registers.set32(R.COMPLETED, 0);
      registers.set32(R.FAILED, 0);
      return;
    }
    if ((status & (R.STATUS_HALTED | R.STATUS_BAD_CONFIGURATION)) !== 0) return;
    const size = registers.read32(R.RING_SIZE);
    const ring = registers.read64(R.RING_BASE);
    if (size < 2 || size > 65536 || (size & (size - 1)) !== 0 || ring % R.DESCRIPTOR_BYTES !== 0) {
      registers.set32(R.STATUS, status | R.STATUS_BAD_CONFIGURATION);
      return;
    }
    status |= R.STATUS_RUNNING;
    registers.set32(R.STATUS, status);
    runBatch(context, ring, size, (control & R.CONTROL_INTERRUPTS) !== 0);
  },
};

function runBatch(context: DeviceWorkContext, ring: number, size: number, interrupts: boolean): void {
  const { registers, port } = context;
  const completions = registers.read64(R.COMPLETIONS);
  let head = registers.read32(R.HEAD);
  const tail = registers.read32(R.TAIL) % size;
  let done = 0;
  let wantInterrupt = false;
  while (head !== tail && done < BATCH) {
    const at = ring + head * R.DESCRIPTOR_BYTES;
    const source = port.readU64(at);
    const destination = port.readU64(at + 8);
    const length = port.readU32(at + 16);
    const flags = port.readU32(at + 20);
    const cookie = port.readU64(at + 24);
    if (port.lastResult !== DMA_OK || source < 0 || destination < 0 || length < 0 || flags < 0 || cookie < 0) {
      halt(context, port.lastResult);
      break;
    }
    let result: number;
    let transferred = 0;
    if (length === 0 || length > R.MAX_LENGTH) {
      result = R.STATUS_BAD_LENGTH;
    } else {
      const dma = (flags & R.FLAG_FILL) !== 0 ? port.fill(destination, length, source & 0xff) : port.copy(source, destination, length);
      result = dma === DMA_OK ? 0 : R.STATUS_DMA_FAULT | dma;
      if (dma === DMA_OK) transferred = length;
    }
    // The phase bit flips on every pass over the ring, so the driver tells new records from old.
    const pass = Math.floor(registers.read32(R.COMPLETED) / size);
    const phase = pass % 2 === 0 ? R.COMPLETION_PHASE : 0;
    const record = completions + head * R.COMPLETION_BYTES;
    port.writeU64(record, cookie);
    port.writeU32(record + 12, transferred);
    // The status word goes last: it is what the driver polls.
    port.writeU32(record + 8, (phase | result) >>> 0);
    if (port.lastResult !== DMA_OK) {
      halt(context, port.lastResult);
      break;
    }
    head = (head + 1) % size;
    registers.set32(R.HEAD, head);
    registers.set32(R.COMPLETED, (registers.read32(R.COMPLETED) + 1) | 0);
    if (result !== 0) registers.set32(R.FAILED, (registers.read32(R.FAILED) + 1) | 0);
    if ((flags & R.FLAG_INTERRUPT) !== 0 || result !== 0) wantInterrupt = true;
    done++;
  }
  if (head !== tail && done === BATCH) context.again();
  if (interrupts && wantInterrupt) context.raise(registers.read32(R.MSI_VECTOR));
}

function halt(context: DeviceWorkContext, fault: number): void {
  const registers = context.registers;
  registers.set32(R.HALT_FAULT, fault);
  registers.set32(R.STATUS, (registers.read32(R.STATUS) & ~R.STATUS_RUNNING) | R.STATUS_HALTED);
  if ((registers.read32(R.CONTROL) & R.CONTROL_INTERRUPTS) !== 0) context.raise(registers.read32(R.MSI_VECTOR));
}
