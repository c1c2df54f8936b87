import { Errors } from '../../base/errors.js';
import { PCI_BAR0, PCI_COMMAND, PCI_COMMAND_MEMORY_SPACE, PCI_INTERRUPT_LINE } from '../../hardware/pci-config-space.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import { internalsOf, type Platform } from '../platform.js';
import type { V86Cpu, V86Emulator, V86Pci } from './emulator.js';

/** v86 maps memory in blocks of 128 KiB: a function's MMIO window takes one. */
const MMIO_BLOCK = 0x20000;
/** Where the first function's registers go: free in v86's physical map up to 0xfeb00000. */
const DEFAULT_MMIO_BASE = 0xfe00_0000;
/** EFLAGS.IF. */
const FLAG_IF = 0x200;

export interface V86AttachOptions {
  /** Guest-physical address of the function's registers (BAR0): a multiple of 128 KiB above guest RAM (default: 0xfe000000, then the next free block). */
  mmioBase?: number;
  /** Told after each register write by the guest has been served (its doorbell batch done, its interrupt line updated). */
  onRegisterWrite?: (offset: number, value: number) => void;
}

/** One function on v86's bus. */
interface Attached {
  readonly fn: PciFunction;
  readonly pciId: number;
  readonly base: number;
  /** v86's copy of the configuration space (what the guest reads). */
  readonly space: Int32Array;
  readonly onRegisterWrite: ((offset: number, value: number) => void) | undefined;
  /** The INTx level last driven, and whether the function posted completions since. */
  level: boolean;
  fresh: boolean;
}

/** What the binding has seen and done, for tests and curious embedders. */
export interface V86BindingStats {
  mmioReads: number;
  mmioWrites: number;
  /** Guest writes dropped: byte-wide, unaligned, beyond the register file, or with Memory Space off. */
  mmioWritesDropped: number;
  configWrites: number;
  /** INTx edges driven into v86's interrupt controller: line raised, line lowered. */
  intxRaised: number;
  intxLowered: number;
}

/**
 * A platform bound to a running v86: guest RAM is v86's, each attached PCI function sits on
 * v86's PCI bus (configuration space, a memory BAR, INTx), the guest's MMIO reaches the
 * function's register file, and the function's completions drive its INTx line. Device
 * models run on v86's thread, inside the MMIO write that rings their doorbell, and DMA goes
 * through the IOMMU like any other.
 *
 * Three things v86 does not do are done here. It has no configuration-write callback, so
 * pci_write8/16/32 are wrapped: the guest's Command register (Bus Master Enable, which the
 * IOMMU's device context follows; Memory Space; Interrupt Disable) and Interrupt Line reach
 * the function's own configuration space, which then is mirrored back into v86's copy (BARs
 * excepted: v86 keeps a memory BAR where it started). It drops 32-bit writes to the Command
 * register; those are applied too. And its interrupt controller, told of an interrupt from
 * inside an MMIO handler while the guest's IF is set, delivers it in the middle of the
 * instruction that is accessing the device (the guest crashes); so the line is changed with IF
 * held clear, and v86 delivers the interrupt at its next instruction boundary. From outside
 * the guest (a batch continued after a macrotask) the line is changed plainly, which also
 * wakes a halted CPU.
 *
 * The INTx line is a level (PciFunction.intxAsserted): raised while completions wait, lowered
 * as soon as the driver has consumed them, and pulsed (lowered and raised again) when new
 * completions arrive while it is high, since v86's PIC may be edge-triggered. Functions of
 * this binding that share an interrupt line are OR'd; a v86 device on the same line is not
 * (v86 does not OR lines): give each function a device number whose line v86 leaves free
 * (00:07.0 and 00:08.0 share IRQ 11 with nothing of v86's under SeaBIOS's default routing).
 */
export class V86Binding {
  readonly platform: Platform;
  readonly stats: V86BindingStats = { mmioReads: 0, mmioWrites: 0, mmioWritesDropped: 0, configWrites: 0, intxRaised: 0, intxLowered: 0 };
  readonly #cpu: V86Cpu;
  readonly #pci: V86Pci;
  readonly #attached = new Map<number, Attached>();
  /** The guest's interrupt lines as this binding drove them, by PIC input. */
  readonly #lines = new Map<number, boolean>();
  readonly #originalWrites: Pick<V86Pci, 'pci_write8' | 'pci_write16' | 'pci_write32'>;
  #ram: Uint8Array;
  /** Where guest RAM sits in v86's WebAssembly memory (a detached view forgets its own offset and length). */
  readonly #ramOffset: number;
  readonly #ramBytes: number;
  #nextBase = DEFAULT_MMIO_BASE;
  /** v86 callbacks (MMIO, configuration writes) on the stack: the guest is in the middle of an instruction. */
  #inGuest = 0;
  #closed = false;

  /** Binds `platform`, which must have been built over this emulator's RAM (createV86Platform). */
  constructor(emulator: object, platform: Platform) {
    const cpu = cpuOf(emulator);
    this.#cpu = cpu;
    this.#pci = cpu.devices.pci;
    this.#ram = guestMemoryOf(emulator);
    this.#ramOffset = this.#ram.byteOffset;
    this.#ramBytes = this.#ram.byteLength;
    const memory = platform.memory.bytes;
    if (platform.options.dataPlane !== 'main-thread' || memory.buffer !== this.#ram.buffer || memory.byteOffset !== this.#ram.byteOffset) {
      throw Errors.InvalidArgument('platform', "a platform over this emulator's RAM with dataPlane 'main-thread' (createV86Platform)", platform);
    }
    this.platform = platform;
    internalsOf(platform).followGuestMemory(() => this.#guestMemory());
    const pci = this.#pci;
    this.#originalWrites = { pci_write8: pci.pci_write8, pci_write16: pci.pci_write16, pci_write32: pci.pci_write32 };
    const wrap = (size: 1 | 2 | 4, original: (address: number, value: number) => void) => (address: number, value: number) => {
      original.call(pci, address, value);
      this.#configWritten(size, address, value);
    };
    pci.pci_write8 = wrap(1, this.#originalWrites.pci_write8);
    pci.pci_write16 = wrap(2, this.#originalWrites.pci_write16);
    pci.pci_write32 = wrap(4, this.#originalWrites.pci_write32);
  }

  /**
   * Puts `fn` on v86's PCI bus at the same bus/device/function, before the guest boots (the
   * firmware and the guest find it when they enumerate). Its Command register starts at 0,
   * as after reset: the guest enables it. BAR0 (the register file) sits at options.mmioBase.
   */
  attach(fn: PciFunction, options: V86AttachOptions = {}): void {
    if (this.#closed) throw Errors.PlatformClosed();
    if (!this.platform.bus.owns(fn)) throw Errors.NotAFunctionOfThisBus('fn');
    const pciId = fn.requesterId;
    if (fn.bus !== 0) throw Errors.InvalidArgument('fn', 'a function on bus 0 (v86 has one PCI bus)', fn.bdf);
    if (this.#pci.devices[pciId] !== undefined) throw Errors.InvalidArgument('fn', 'a function at a bus/device/function v86 leaves free', fn.bdf);
    if (fn.registers === null || fn.bars.length !== 1) throw Errors.InvalidArgument('fn', 'a function with one BAR, its register file', fn.bdf);
    if (!fn.hasIntx) throw Errors.InvalidArgument('fn', `a function whose model has an INTx pin (v86 has no MSI; '${fn.model}' has MSI only)`, fn.bdf);
    const base = options.mmioBase ?? this.#nextBase;
    if (!Number.isSafeInteger(base) || base % MMIO_BLOCK !== 0 || base < this.#ramBytes || base + MMIO_BLOCK > 2 ** 32) {
      throw Errors.InvalidArgument('options.mmioBase', `a multiple of 0x20000 above guest RAM (0x${this.#ramBytes.toString(16)}) and below 4 GiB`, base);
    }
    for (const other of this.#attached.values())
      if (other.base === base) throw Errors.InvalidArgument('options.mmioBase', 'an address no other function uses', base);
    this.#nextBase = Math.max(this.#nextBase, base + MMIO_BLOCK);
    fn.config.write16(PCI_COMMAND, 0);
    fn.config.write32(PCI_BAR0, base);
    const space = this.#pci.register_device({
      name: `viommu ${fn.model} ${fn.bdf}`,
      pci_id: pciId,
      pci_space: Array.from(fn.config.bytes),
      pci_bars: [{ size: fn.bars[0]!.size }],
    });
    const entry: Attached = { fn, pciId, base, space, onRegisterWrite: options.onRegisterWrite, level: false, fresh: false };
    this.#cpu.io.mmap_register(
      base,
      MMIO_BLOCK,
      (address) => this.#read8(entry, address),
      () => {
        this.stats.mmioWritesDropped++;
      },
      (address) => this.#read32(entry, address),
      (address, value) => this.#write32(entry, address, value),
    );
    // Completions the model posts arrive as its interrupts; on v86 they move the INTx line.
    fn.setInterruptHandler(() => {
      entry.fresh = true;
      this.#updateIntx(entry);
    });
    this.#attached.set(pciId, entry);
  }

  /** Closes the platform and gives v86 its own configuration writes back; MMIO to attached functions then reads all ones. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    Object.assign(this.#pci, this.#originalWrites);
    await this.platform.close();
  }

  /** Guest RAM now: the view is rebuilt only when v86's WebAssembly memory grew (its old buffer is then detached). */
  #guestMemory(): Uint8Array {
    const buffer = this.#cpu.wasm_memory.buffer;
    if (buffer !== this.#ram.buffer) this.#ram = new Uint8Array(buffer, this.#ramOffset, this.#ramBytes);
    return this.#ram;
  }

  #decodes(entry: Attached): boolean {
    return !this.#closed && (entry.fn.config.read16(PCI_COMMAND) & PCI_COMMAND_MEMORY_SPACE) !== 0;
  }

  #read32(entry: Attached, address: number): number {
    this.stats.mmioReads++;
    const offset = (address >>> 0) - entry.base;
    const registers = entry.fn.registers!;
    // Nothing answers with decoding off: all ones, as a master abort reads.
    if (!this.#decodes(entry)) return -1;
    if (offset % 4 !== 0 || offset + 4 > registers.size) return 0;
    return registers.read32(offset) | 0;
  }

  #read8(entry: Attached, address: number): number {
    const offset = (address >>> 0) - entry.base;
    return (this.#read32(entry, entry.base + offset - (offset % 4)) >>> ((offset % 4) * 8)) & 0xff;
  }

  #write32(entry: Attached, address: number, value: number): void {
    const offset = (address >>> 0) - entry.base;
    const registers = entry.fn.registers!;
    if (!this.#decodes(entry) || offset % 4 !== 0 || offset + 4 > registers.size) {
      this.stats.mmioWritesDropped++;
      return;
    }
    this.stats.mmioWrites++;
    this.#inGuest++;
    try {
      // A doorbell runs the device model right here (dataPlane 'main-thread'); its completions
      // raise the line through the interrupt handler, and the line drops once they are consumed.
      registers.write32(offset, value >>> 0);
      this.#updateIntx(entry);
      entry.onRegisterWrite?.(offset, value >>> 0);
    } catch (error) {
      // Nothing may be thrown into v86: it would stop the emulator.
      this.#callbackError(error);
    } finally {
      this.#inGuest--;
    }
  }

  /** After v86 handled a configuration write: the parts that concern one of ours reach its configuration space. */
  #configWritten(size: 1 | 2 | 4, address: number, value: number): void {
    const entry = this.#attached.get((address >> 8) & 0xffff);
    if (entry === undefined || this.#closed) return;
    this.stats.configWrites++;
    this.#inGuest++;
    try {
      const register = address & 0xff;
      const end = register + size;
      const byteAt = (offset: number) => (value >>> ((offset - register) * 8)) & 0xff;
      const config = entry.fn.config;
      if (register < PCI_COMMAND + 2 && end > PCI_COMMAND) {
        let command = config.read16(PCI_COMMAND);
        if (register <= PCI_COMMAND) command = (command & 0xff00) | byteAt(PCI_COMMAND);
        if (end > PCI_COMMAND + 1) command = (command & 0x00ff) | (byteAt(PCI_COMMAND + 1) << 8);
        config.write16(PCI_COMMAND, command);
      }
      if (register <= PCI_INTERRUPT_LINE && end > PCI_INTERRUPT_LINE) config.write16(PCI_INTERRUPT_LINE, byteAt(PCI_INTERRUPT_LINE));
      // Our configuration space decides what the guest reads back (read-only fields stay read-only).
      for (let offset = 0; offset < 256; offset += 4) {
        if ((offset >= PCI_BAR0 && offset < PCI_BAR0 + 24) || offset === 0x30) continue;
        entry.space[offset >> 2] = config.read32(offset) | 0;
      }
      this.#updateIntx(entry);
    } catch (error) {
      this.#callbackError(error);
    } finally {
      this.#inGuest--;
    }
  }

  /** Drives the function's INTx line to its level (see the class comment). */
  #updateIntx(entry: Attached): void {
    const level = !this.#closed && entry.fn.intxAsserted;
    const pulse = level && entry.fresh;
    if (level === entry.level && !pulse) return;
    entry.level = level;
    if (level) entry.fresh = false;
    const irq = this.#irqOf(entry);
    let line = false;
    for (const other of this.#attached.values()) if (other.level && this.#irqOf(other) === irq) line = true;
    const was = this.#lines.get(irq) ?? false;
    if (line === was && !(line && pulse)) return;
    this.#lines.set(irq, line);
    // Inside a guest instruction, hold IF clear: the PIC records the change, and v86 delivers
    // the interrupt at its next instruction boundary instead of in the middle of this one.
    const inGuest = this.#inGuest > 0;
    const flags = this.#cpu.flags;
    const saved = inGuest ? flags[0]! : 0;
    if (inGuest) flags[0] = saved & ~FLAG_IF;
    try {
      if (was) {
        this.#pci.lower_irq(entry.pciId);
        this.stats.intxLowered++;
      }
      if (line) {
        this.#pci.raise_irq(entry.pciId);
        this.stats.intxRaised++;
      }
    } finally {
      if (inGuest) flags[0] = flags[0]! | (saved & FLAG_IF);
    }
  }

  /** The interrupt controller input of a function's INTx line, as v86's raise_irq computes it (PIRQ index if the routing is unknown). */
  #irqOf(entry: Attached): number {
    const pin = (entry.space[PCI_INTERRUPT_LINE >> 2]! >> 8) & 0xff;
    const pirq = (pin - 1 + (entry.pciId >> 3) - 1) & 3;
    return this.#pci.isa_bridge_space8?.[0x60 + pirq] ?? 0x100 + pirq;
  }

  #callbackError(error: unknown): void {
    try {
      this.platform.options.onCallbackError(error);
    } catch {
      // The callback itself failed; v86 must still not see an exception.
    }
  }
}

/** v86's guest RAM as bytes: a view of its WebAssembly memory (taken once: cpu.mem8 builds a new view per access). */
export function guestMemoryOf(emulator: object): Uint8Array {
  const cpu = cpuOf(emulator);
  const mem8 = cpu.mem8;
  return new Uint8Array(cpu.wasm_memory.buffer, mem8.byteOffset, mem8.length);
}

/** @internal The CPU of a v86 emulator whose machine exists (from 'emulator-loaded' on), checked for what the binding uses. */
export function cpuOf(emulator: object): V86Cpu {
  const cpu = (emulator as Partial<V86Emulator> | null)?.v86?.cpu;
  const usable =
    cpu !== undefined &&
    typeof cpu.io?.mmap_register === 'function' &&
    typeof cpu.devices?.pci?.register_device === 'function' &&
    typeof cpu.jit_dirty_cache === 'function' &&
    typeof cpu.mem8?.length === 'number' &&
    cpu.mem8.length > 0;
  if (!usable) throw Errors.InvalidArgument('emulator', "a v86 emulator (new V86({...})) whose machine exists (after its 'emulator-loaded' event)", emulator);
  return cpu;
}
