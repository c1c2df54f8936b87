import { Errors } from '../base/errors.js';
import {
  type DeviceContextTable,
  kContextBehindIommu,
  kContextBusMaster,
  kContextDomainField,
  kContextFlagsField,
  kContextInputMappingField,
  kContextPresent,
  kNoDomain,
} from '../iommu/shared-memory/device-context-table.js';
import { type InvalidationLog, kInvalidateDevice } from '../iommu/shared-memory/invalidation-log.js';
import { PCI_BAR0, PCI_COMMAND, PCI_COMMAND_BUS_MASTER, PCI_COMMAND_MEMORY_SPACE } from './pci-config-space.js';
import { PciFunction, type PciFunctionOptions } from './pci-function.js';
import type { DeviceModel } from '../devices/device-model.js';
import { MAX_REGISTER_BYTES } from '../devices/device-model.js';
import { kControlModel, kControlPeer, kControlPrivatePage, kControlPrivatePages } from './device-control-table.js';
import type { DeviceSharedState } from './device-shared-state.js';
import { RegisterFile } from './register-file.js';
import type { BarDefinition } from './pci-config-space.js';


/** The windows BARs are placed in ("firmware" assignment): 32-bit memory, 64-bit memory, I/O ports. */
const MMIO32_BASE = 0xc000_0000;
const MMIO32_END = 2 ** 32;
/** 64-bit BARs go above the largest guest memory (2^40). */
const MMIO64_BASE = 2 ** 40;
const MMIO64_END = 2 ** 48;
const IO_BASE = 0x1000;
const IO_END = 0x10000;

/**
 * The emulated PCI bus: functions, their configuration space, and Bus Master Enable, which
 * the bus mirrors into the shared device context table so that workers can block DMA from a
 * function that may not master the bus. MMIO windows are addresses only: DMA cannot reach them.
 */
export class PciBus {
  readonly #contexts: DeviceContextTable;
  readonly #log: InvalidationLog;
  readonly #models: readonly DeviceModel[];
  readonly #inputMappingBase: number;
  readonly #devices: DeviceSharedState;
  readonly #onDoorbell: (fn: PciFunction) => void;
  /** Next free page of the device memory arena. */
  #arenaPage = 0;
  readonly #functions: PciFunction[] = [];
  readonly #byRequesterId = new Map<number, PciFunction>();
  readonly #owned = new WeakSet<object>();
  #mmio32 = MMIO32_BASE;
  #mmio64 = MMIO64_BASE;
  #io = IO_BASE;

  constructor(
    contexts: DeviceContextTable,
    log: InvalidationLog,
    models: readonly DeviceModel[],
    devices: DeviceSharedState,
    onDoorbell: (fn: PciFunction) => void,
    inputMappingBase = 0,
  ) {
    this.#contexts = contexts;
    this.#log = log;
    this.#models = models;
    this.#devices = devices;
    this.#onDoorbell = onDoorbell;
    this.#inputMappingBase = inputMappingBase;
  }

  get capacity(): number {
    return this.#contexts.capacity;
  }

  /** Adds a function and returns it; that object is the PDO the V2 routines take. */
  addFunction(options: PciFunctionOptions): PciFunction {
    if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
    checkField('bus', options.bus, 255);
    checkField('device', options.device, 31);
    checkField('function', options.function, 7);
    for (const name of ['externalFacing', 'behindIommu', 'busMasterEnable'] as const) {
      if (options[name] !== undefined && typeof options[name] !== 'boolean') throw Errors.InvalidArgument(`options.${name}`, 'a boolean', options[name]);
    }
    const model = options.model ?? 'dma-test';
    const modelIndex = this.#models.findIndex((m) => m.name === model);
    if (modelIndex < 0) throw Errors.UnknownDeviceModel(String(model), this.#models.map((m) => m.name));
    const info = this.#models[modelIndex]!;
    if (options.modelOptions !== undefined && (typeof options.modelOptions !== 'object' || options.modelOptions === null)) {
      throw Errors.InvalidArgument('options.modelOptions', 'an object', options.modelOptions);
    }
    const requesterId = (options.bus << 8) | (options.device << 3) | options.function;
    const existing = this.#byRequesterId.get(requesterId);
    if (existing !== undefined) throw Errors.DuplicateFunction(existing.bdf);
    if (this.#functions.length >= this.#contexts.capacity) throw Errors.TooManyFunctions(this.#contexts.capacity);
    const bars = info.registerBytes > 0 ? [{ size: info.registerBytes, kind: 'memory32' as const }, ...(options.bars ?? [])] : (options.bars ?? []);
    this.#checkBars(bars);
    const privateBytes = info.privateMemoryBytes(options.modelOptions ?? {});
    const privatePages = Math.ceil(privateBytes / 4096);
    if (this.#arenaPage + privatePages > this.#devices.memory.byteLength / 4096) throw Errors.DeviceMemoryFull(privateBytes);
    const slot = this.#functions.length;
    const fn = new PciFunction({ ...options, bars, model, slot, inputMappingBase: this.#inputMappingBase }, info, (f, command) =>
      this.#commandWritten(f, command),
    );
    if (info.registerBytes > 0) {
      fn.registers = new RegisterFile(this.#devices.registers, slot * MAX_REGISTER_BYTES, info.registerBytes, (offset) => {
        if (info.isDoorbell(offset)) this.#onDoorbell(fn);
      });
      info.reset(fn.registers, fn.modelOptions);
    }
    const control = this.#devices.control;
    control.set(slot, kControlModel, modelIndex);
    control.set(slot, kControlPrivatePage, this.#arenaPage);
    control.set(slot, kControlPrivatePages, privatePages);
    control.set(slot, kControlPeer, -1);
    this.#arenaPage += privatePages;
    this.#assignBars(fn);
    this.#functions.push(fn);
    this.#byRequesterId.set(requesterId, fn);
    this.#owned.add(fn);
    const flags = kContextPresent | (fn.behindIommu ? kContextBehindIommu : 0);
    this.#contexts.set(slot, kContextDomainField, kNoDomain);
    this.#contexts.set(slot, kContextInputMappingField, fn.inputMappingId);
    this.#contexts.set(slot, kContextFlagsField, flags);
    if (options.busMasterEnable ?? true) fn.config.write16(PCI_COMMAND, PCI_COMMAND_BUS_MASTER | PCI_COMMAND_MEMORY_SPACE);
    return fn;
  }

  /**
   * Wires two functions together (two NICs on one cable): each becomes the other's peer,
   * which their device models use to hand data across.
   */
  connect(a: PciFunction, b: PciFunction): void {
    if (!this.owns(a) || !this.owns(b) || a === b) throw Errors.InvalidArgument('functions', 'two different functions of this bus', [a, b]);
    if (a.model !== b.model) throw Errors.InvalidArgument('functions', 'two functions of the same device model', [a.model, b.model]);
    this.#devices.control.set(a.slot, kControlPeer, b.slot);
    this.#devices.control.set(b.slot, kControlPeer, a.slot);
  }

  /** The function wired to `fn`, if any. */
  peerOf(fn: PciFunction): PciFunction | undefined {
    const peer = this.#devices.control.get(fn.slot, kControlPeer);
    return peer < 0 ? undefined : this.#functions[peer];
  }

  /** `fn`'s device-private memory (its slice of the arena: a disk's media, a NIC's queue), empty if it has none. */
  privateMemoryOf(fn: PciFunction): Uint8Array {
    if (!this.owns(fn)) throw Errors.NotAFunctionOfThisBus('fn');
    const control = this.#devices.control;
    const first = control.get(fn.slot, kControlPrivatePage) * 4096;
    return this.#devices.memory.subarray(first, first + control.get(fn.slot, kControlPrivatePages) * 4096);
  }

  /** True for functions this bus created. */
  owns(value: unknown): value is PciFunction {
    return typeof value === 'object' && value !== null && this.#owned.has(value);
  }

  functions(): readonly PciFunction[] {
    return this.#functions;
  }

  functionAt(slot: number): PciFunction | undefined {
    return this.#functions[slot];
  }

  find(bus: number, device: number, fn: number): PciFunction | undefined {
    return this.#byRequesterId.get((bus << 8) | (device << 3) | fn);
  }

  #commandWritten(fn: PciFunction, command: number): void {
    const enabled = (command & PCI_COMMAND_BUS_MASTER) !== 0;
    const flags = this.#contexts.get(fn.slot, kContextFlagsField);
    if (((flags & kContextBusMaster) !== 0) === enabled) return;
    this.#contexts.setFlag(fn.slot, kContextBusMaster, enabled);
    // Workers drop whatever they cached for this function before its next DMA.
    this.#log.publish(kInvalidateDevice, fn.slot, 0, 0);
  }

  /** Sizes a BAR may have, and whether every BAR of the function still fits its window. */
  #checkBars(bars: readonly BarDefinition[]): void {
    if (!Array.isArray(bars) || bars.length > 6) throw Errors.InvalidArgument('options.bars', 'an array of at most 6 BAR definitions', bars);
    let mmio32 = this.#mmio32;
    let mmio64 = this.#mmio64;
    let io = this.#io;
    let registers = 0;
    for (const bar of bars) {
      const kind = bar.kind ?? 'memory32';
      const [min, max] = kind === 'io' ? [4, 256] : kind === 'memory32' ? [16, 2 ** 30] : [16, 2 ** 31];
      if (kind !== 'io' && kind !== 'memory32' && kind !== 'memory64') throw Errors.InvalidArgument('options.bars[].kind', "'memory32', 'memory64' or 'io'", kind);
      if (!Number.isSafeInteger(bar.size) || bar.size < min || bar.size > max || !Number.isInteger(Math.log2(bar.size))) {
        throw Errors.ArgumentOutOfRange('options.bars[].size', `a power of two between ${min} and ${max} for a ${kind} BAR`, bar.size);
      }
      registers += kind === 'memory64' ? 2 : 1;
      if (registers > 6) throw Errors.InvalidArgument('options.bars', 'BARs that fit the 6 BAR registers', bars);
      if (kind === 'io') io = alignUp(io, bar.size) + bar.size;
      else if (kind === 'memory32') mmio32 = alignUp(mmio32, bar.size) + bar.size;
      else mmio64 = alignUp(mmio64, bar.size) + bar.size;
      if (io > IO_END || mmio32 > MMIO32_END || mmio64 > MMIO64_END) throw Errors.BarWindowFull(kind);
    }
  }

  /** Firmware-style BAR placement: each BAR naturally aligned in its window (checked by #checkBars). */
  #assignBars(fn: PciFunction): void {
    let register = 0;
    for (const bar of fn.bars) {
      const kind = bar.kind ?? 'memory32';
      if (kind === 'memory64') {
        const base = alignUp(this.#mmio64, bar.size);
        this.#mmio64 = base + bar.size;
        fn.config.write32(PCI_BAR0 + register * 4, base % 2 ** 32);
        fn.config.write32(PCI_BAR0 + register * 4 + 4, Math.floor(base / 2 ** 32));
        register += 2;
      } else if (kind === 'io') {
        const base = alignUp(this.#io, bar.size);
        this.#io = base + bar.size;
        fn.config.write32(PCI_BAR0 + register * 4, base);
        register += 1;
      } else {
        const base = alignUp(this.#mmio32, bar.size);
        this.#mmio32 = base + bar.size;
        fn.config.write32(PCI_BAR0 + register * 4, base);
        register += 1;
      }
    }
  }
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function checkField(name: string, value: unknown, max: number): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw Errors.ArgumentOutOfRange(`options.${name}`, `an integer in 0..${max}`, value);
  }
}
