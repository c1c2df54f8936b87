import type { RegisterFile } from './register-file.js';

/**
 * What the bus needs to know of a function's device model: its PCI identity, its register
 * file (BAR0) and which register writes are doorbells, and its device-private memory. What
 * the model does with its work is devices/device-model.ts (DeviceModel extends this).
 */
export interface FunctionModel {
  readonly name: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24-bit class code (class << 16 | subclass << 8 | prog-if). */
  readonly classCode: number;
  /** Size of BAR0 (the register file): 0, or a power of two from 16 to MAX_REGISTER_BYTES. */
  readonly registerBytes: number;
  /** Whether a driver write at `offset` means "there is work": the platform schedules the model. */
  isDoorbell(offset: number): boolean;
  /** Bytes of device-private shared memory for a function (a disk's media, a NIC's wire queue), or 0. */
  privateMemoryBytes(options: Readonly<Record<string, unknown>>): number;
  /** Register values at reset (main thread, once). */
  reset(registers: RegisterFile, options: Readonly<Record<string, unknown>>): void;
  /**
   * Optional: whether a driver may write the register at `offset` (default: every register).
   * A driver's write anywhere else is dropped, as hardware ignores writes to read-only
   * registers; the model itself still sets them (RegisterFile.set32).
   */
  registerWritable?(offset: number): boolean;
  /**
   * Optional: what a register write does at once, on the thread that wrote it, before any
   * doorbell is served (write-1-to-set and write-1-to-clear registers such as NVMe's INTMS
   * and INTMC). The value written is already in the register.
   */
  registerWritten?(registers: RegisterFile, offset: number, value: number): void;
  /**
   * Optional: whether the function asserts its INTx pin now, read from its registers (for
   * machines without MSI, such as v86). Models without it have MSI only.
   */
  intxAsserted?(registers: RegisterFile): boolean;
}

/** Upper bound of a register file; the shared register arena reserves this much per function. */
export const MAX_REGISTER_BYTES = 16 * 1024;
