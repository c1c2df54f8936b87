/**
 * The parts of a running v86 emulator (npm `v86`, 0.5.x) that machine/v86 uses, described by
 * their shape only: the package never imports v86, which stays a development dependency. The
 * names are v86's own (src/main.js, src/cpu.js, src/pci.js, src/io.js) and survive its
 * minified build.
 */

/** The V86 object (`new V86({...})`); the binding needs its emulator core. */
export interface V86Emulator {
  readonly v86: { readonly cpu: V86Cpu };
}

/** v86's CPU object: guest RAM, flags, the I/O and PCI buses. */
export interface V86Cpu {
  /** The WebAssembly memory that holds guest RAM (among other things); its buffer is replaced when it grows. */
  readonly wasm_memory: { readonly buffer: ArrayBufferLike };
  /** Guest RAM (a Proxy that builds a view per access: read its offset and length once). */
  readonly mem8: { readonly byteOffset: number; readonly length: number };
  /** EFLAGS (a one-element view); bit 9 is IF. */
  readonly flags: { [index: number]: number };
  readonly io: V86Io;
  readonly devices: { readonly pci: V86Pci };
  /** Forgets code the JIT compiled from guest RAM in [start, end) (what v86's own write_blob calls). */
  jit_dirty_cache(start: number, end: number): void;
}

/** Memory-mapped I/O: handlers per 128 KiB block, called with signed 32-bit addresses. */
export interface V86Io {
  mmap_register(
    base: number,
    size: number,
    read8: (address: number) => number,
    write8: (address: number, value: number) => void,
    read32: (address: number) => number,
    write32: (address: number, value: number) => void,
  ): void;
}

/** A device on v86's PCI bus (register_device's argument). */
export interface V86PciDevice {
  name: string;
  /** bus << 8 | device << 3 | function (bus 0 only). */
  pci_id: number;
  /** The configuration space's first bytes, as v86 should start with them. */
  pci_space: number[];
  /** One entry per BAR register: its size (memory BARs stay where pci_space puts them). */
  pci_bars: Array<{ size: number } | undefined>;
}

/** v86's PCI bus. */
export interface V86Pci {
  /** Devices by pci_id (undefined where none). */
  readonly devices: ReadonlyArray<unknown>;
  /** The PIIX3 ISA bridge's configuration space: bytes 0x60..0x63 route PIRQA..D to PIC inputs (SeaBIOS programs them). */
  readonly isa_bridge_space8?: Uint8Array;
  /** Adds a device; returns v86's copy of its configuration space (64 dwords), which the guest reads. */
  register_device(device: V86PciDevice): Int32Array;
  /** Asserts / deasserts the INTx line of a device (routed through the PIIX3 PIRQ registers to a PIC input). */
  raise_irq(pciId: number): void;
  lower_irq(pciId: number): void;
  /** The guest's configuration writes (address = bdf << 8 | register); v86 has no callback for them. */
  pci_write8(address: number, value: number): void;
  pci_write16(address: number, value: number): void;
  pci_write32(address: number, value: number): void;
}
