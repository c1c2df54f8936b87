import { TWO_32 } from '../base/numbers.js';

/**
 * A type-0 PCI configuration space header (256 bytes), with the write masks real hardware
 * has: only the command register, the BARs (size-masked) and the interrupt line are
 * writable; everything else reads back what the device reports.
 *
 *   0x00 vendor ID    0x02 device ID    0x04 command    0x06 status
 *   0x08 revision     0x09 class code (prog-if, subclass, class)   0x0E header type
 *   0x10..0x27 BAR0..BAR5    0x2C subsystem vendor    0x2E subsystem ID
 *   0x3C interrupt line    0x3D interrupt pin
 */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_CODE = 0x09;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const PCI_COMMAND_IO_SPACE = 0x1;
export const PCI_COMMAND_MEMORY_SPACE = 0x2;
export const PCI_COMMAND_BUS_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
const COMMAND_WRITABLE = PCI_COMMAND_IO_SPACE | PCI_COMMAND_MEMORY_SPACE | PCI_COMMAND_BUS_MASTER | 0x40 | 0x100 | PCI_COMMAND_INTX_DISABLE;

export type BarKind = 'memory32' | 'memory64' | 'io';

export interface BarDefinition {
  /** Bytes, a power of two: 16 B to 1 GiB (memory32), 2 GiB (memory64); 4 to 256 B (I/O). */
  size: number;
  kind?: BarKind;
  prefetchable?: boolean;
}

export interface ConfigSpaceIdentity {
  vendorId: number;
  deviceId: number;
  classCode: number;
  revisionId: number;
  subsystemVendorId: number;
  subsystemId: number;
  interruptPin: number;
}

export class PciConfigSpace {
  readonly bytes = new Uint8Array(256);
  readonly #view = new DataView(this.bytes.buffer);
  /** Per BAR register (0..5): the size mask of the BAR starting there, or 0. */
  readonly #barMasks = new Uint32Array(6);
  readonly #onCommand: (command: number) => void;

  constructor(identity: ConfigSpaceIdentity, bars: readonly BarDefinition[], onCommand: (command: number) => void) {
    this.#onCommand = onCommand;
    const v = this.#view;
    v.setUint16(PCI_VENDOR_ID, identity.vendorId, true);
    v.setUint16(PCI_DEVICE_ID, identity.deviceId, true);
    v.setUint8(PCI_REVISION_ID, identity.revisionId);
    v.setUint8(PCI_CLASS_CODE, identity.classCode & 0xff);
    v.setUint16(PCI_CLASS_CODE + 1, identity.classCode >>> 8, true);
    v.setUint16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId, true);
    v.setUint16(PCI_SUBSYSTEM_ID, identity.subsystemId, true);
    v.setUint8(PCI_INTERRUPT_PIN, identity.interruptPin);
    let register = 0;
    for (const bar of bars) {
      const kind = bar.kind ?? 'memory32';
      const flags = kind === 'io' ? 0x1 : (kind === 'memory64' ? 0x4 : 0) | (bar.prefetchable ? 0x8 : 0);
      this.#barMasks[register] = ~(bar.size - 1) >>> 0;
      v.setUint32(PCI_BAR0 + register * 4, flags, true);
      register += kind === 'memory64' ? 2 : 1;
    }
  }

  read8(offset: number): number {
    return this.#view.getUint8(offset);
  }

  read16(offset: number): number {
    return this.#view.getUint16(offset, true);
  }

  read32(offset: number): number {
    return this.#view.getUint32(offset, true);
  }

  write16(offset: number, value: number): void {
    if (offset === PCI_COMMAND) {
      const command = (this.read16(PCI_COMMAND) & ~COMMAND_WRITABLE) | (value & COMMAND_WRITABLE);
      this.#view.setUint16(PCI_COMMAND, command, true);
      this.#onCommand(command);
    } else if (offset === PCI_INTERRUPT_LINE) {
      this.#view.setUint8(PCI_INTERRUPT_LINE, value & 0xff);
    } else if (offset >= PCI_BAR0 && offset < PCI_BAR0 + 24) {
      const aligned = offset & ~3;
      const old = this.read32(aligned);
      const shift = (offset - aligned) * 8;
      this.write32(aligned, ((old & ~(0xffff << shift)) | ((value & 0xffff) << shift)) >>> 0);
    }
  }

  write32(offset: number, value: number): void {
    if (offset === PCI_COMMAND) {
      this.write16(PCI_COMMAND, value & 0xffff);
      return;
    }
    if (offset === PCI_INTERRUPT_LINE) {
      this.#view.setUint8(PCI_INTERRUPT_LINE, value & 0xff);
      return;
    }
    if (offset < PCI_BAR0 || offset >= PCI_BAR0 + 24 || offset % 4 !== 0) return;
    const register = (offset - PCI_BAR0) / 4;
    const mask = this.#barMasks[register]!;
    const old = this.read32(offset);
    if (mask !== 0) {
      const flagBits = (old & 1) === 1 ? 0x3 : 0xf;
      this.#view.setUint32(offset, ((value & mask) | (old & flagBits)) >>> 0, true);
    } else if (register > 0 && (this.read32(offset - 4) & 0x7) === 0x4 && this.#barMasks[register - 1] !== 0) {
      // Upper half of a 64-bit BAR: all bits writable (sizes below 4 GiB).
      this.#view.setUint32(offset, value >>> 0, true);
    }
  }

  /** The address BAR `index` decodes (the firmware-assigned base), 0 if unassigned. */
  barAddress(register: number): number {
    const low = this.read32(PCI_BAR0 + register * 4);
    if ((low & 1) === 1) return low & ~0x3;
    const base = (low & ~0xf) >>> 0;
    return (low & 0x6) === 0x4 ? base + this.read32(PCI_BAR0 + register * 4 + 4) * TWO_32 : base;
  }
}
