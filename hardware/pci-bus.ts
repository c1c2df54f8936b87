import { Errors } from '../base/errors.js';
import { PAGE_SIZE, TWO_32 } from '../base/numbers.js';
import { kControlModel, kControlPeer, kControlPrivatePage, kControlPrivatePages } from './device-control-table.js';
import type { DeviceSharedState } from './device-shared-state.js';
import { type FunctionModel, MAX_REGISTER_BYTES } from './function-model.js';
import { type BarDefinition, PCI_BAR0, PCI_COMMAND, PCI_COMMAND_BUS_MASTER, PCI_COMMAND_MEMORY_SPACE } from './pci-config-space.js';
import { PciFunction, type PciFunctionOptions } from './pci-function.js';
import { RegisterFile } from './register-file.js';
import type { IommuHooks, RequesterBus } from './substrate.js';

/** The windows BARs are placed in ("firmware" assignment): 32-bit memory, 64-bit memory, I/O ports. */
const MMIO32_BASE = 0xc000_0000;
const MMIO32_END = TWO_32;
/** 64-bit BARs go above the largest guest memory (2^40). */
const MMIO64_BASE = 2 ** 40;
const MMIO64_END = 2 ** 48;
const IO_BASE = 0x1000;
const IO_END = 0x10000;

export interface PciBusOptions {
  /** Functions the bus can hold (the IOMMU's device context table has as many slots). */
  capacity: number;
  /** The device models functions may run, by name (index = model id in shared memory). */
  models: readonly FunctionModel[];
  /** Register files, device-private memory and the device control table. */
  devices: DeviceSharedState;
  /** A driver wrote a doorbell register of `fn`. */
  onDoorbell: (fn: PciFunction) => void;
  /** Added to each requester ID to form its input mapping ID (default 0). */
  inputMappingBase?: number;
}

/**
 * The emulated PCI bus: functions, their configuration space and BARs, register files and
 * device-private memory. The IOMMU registers itself with setupIommu (as with QEMU's
 * pci_setup_iommu) and hears from the bus when a function is added and when its Bus Master
 * Enable bit changes; the bus never touches the IOMMU's tables. MMIO windows are addresses
 * only: DMA cannot reach them.
 */
export class PciBus implements RequesterBus {
  readonly capacity: number;
  readonly #models: readonly FunctionModel[];
  readonly #inputMappingBase: number;
  readonly #devices: DeviceSharedState;
  readonly #onDoorbell: (fn: PciFunction) => void;
  #iommu: IommuHooks | null = null;
  /** Bus Master Enable as the IOMMU was last told, per slot. */
  readonly #busMaster: Uint8Array;
  /** Next free page of the device memory arena. */
  #arenaPage = 0;
  readonly #functions: PciFunction[] = [];
  readonly #byRequesterId = new Map<number, PciFunction>();
  readonly #owned = new WeakSet<object>();
  #mmio32 = MMIO32_BASE;
  #mmio64 = MMIO64_BASE;
  #io = IO_BASE;

  /** @internal The platform builds its bus. */
  constructor(options: PciBusOptions) {
    this.capacity = options.capacity;
    this.#models = options.models;
    this.#devices = options.devices;
    this.#onDoorbell = options.onDoorbell;
    this.#inputMappingBase = options.inputMappingBase ?? 0;
    this.#busMaster = new Uint8Array(options.capacity);
  }

  /**
   * @internal Puts an IOMMU between the bus's functions and memory: `hooks` hears of every function
   * added from now on and of every change of its Bus Master Enable bit. Once per bus, before
   * the first function is added.
   */
  setupIommu(hooks: IommuHooks): void {
    if (this.#iommu !== null || this.#functions.length > 0) throw Errors.IommuAlreadySetUp();
    this.#iommu = hooks;
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
    const model = options.model === undefined ? 'dma-test' : options.model;
    if (typeof model !== 'string') throw Errors.InvalidArgument('options.model', 'the name of a device model', model);
    const modelIndex = this.#models.findIndex((m) => m.name === model);
    if (modelIndex < 0)
      throw Errors.UnknownDeviceModel(
        String(model),
        this.#models.map((m) => m.name),
      );
    const info = this.#models[modelIndex]!;
    if (options.modelOptions !== undefined && (typeof options.modelOptions !== 'object' || options.modelOptions === null)) {
      throw Errors.InvalidArgument('options.modelOptions', 'an object', options.modelOptions);
    }
    const requesterId = (options.bus << 8) | (options.device << 3) | options.function;
    const existing = this.#byRequesterId.get(requesterId);
    if (existing !== undefined) throw Errors.DuplicateFunction(existing.bdf);
    if (this.#functions.length >= this.capacity) throw Errors.TooManyFunctions(this.capacity);
    const bars = info.registerBytes > 0 ? [{ size: info.registerBytes, kind: 'memory32' as const }, ...(options.bars ?? [])] : (options.bars ?? []);
    this.#checkBars(bars);
    const privateBytes = info.privateMemoryBytes(options.modelOptions ?? {});
    const privatePages = Math.ceil(privateBytes / PAGE_SIZE);
    if (this.#arenaPage + privatePages > this.#devices.memory.byteLength / PAGE_SIZE) throw Errors.DeviceMemoryFull(privateBytes);
    const slot = this.#functions.length;
    const fn = new PciFunction({ ...options, bars, model, slot, inputMappingBase: this.#inputMappingBase }, info, (f, command) =>
      this.#commandWritten(f, command),
    );
    if (info.registerBytes > 0) {
      const registers = new RegisterFile(
        this.#devices.registers,
        slot * MAX_REGISTER_BYTES,
        info.registerBytes,
        (offset, value) => {
          info.registerWritten?.(registers, offset, value);
          if (info.isDoorbell(offset)) this.#onDoorbell(fn);
        },
        info.registerWritable?.bind(info) ?? null,
      );
      fn.registers = registers;
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
    this.#iommu?.functionAdded(fn);
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
    const first = control.get(fn.slot, kControlPrivatePage) * PAGE_SIZE;
    return this.#devices.memory.subarray(first, first + control.get(fn.slot, kControlPrivatePages) * PAGE_SIZE);
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
    if ((this.#busMaster[fn.slot] === 1) === enabled) return;
    this.#busMaster[fn.slot] = enabled ? 1 : 0;
    this.#iommu?.busMasterChanged(fn, enabled);
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
      if (kind !== 'io' && kind !== 'memory32' && kind !== 'memory64')
        throw Errors.InvalidArgument('options.bars[].kind', "'memory32', 'memory64' or 'io'", kind);
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
        fn.config.write32(PCI_BAR0 + register * 4, base % TWO_32);
        fn.config.write32(PCI_BAR0 + register * 4 + 4, Math.floor(base / TWO_32));
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
