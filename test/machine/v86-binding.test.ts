import t, { type Test } from 'tap';
import { NVME, PCI_COMMAND, PCI_INTERRUPT_LINE, type Platform } from '../../machine/index.js';
import { createV86Platform, DeviceAssignment, V86Binding } from '../../machine/v86/index.js';
import type { V86PciDevice } from '../../machine/v86/emulator.js';
import { platformFor } from '../helpers/fixture.js';

/**
 * viommu/v86 against a stand-in for v86: the same shape (machine/v86/emulator.ts) and the
 * same behaviour where it matters (configuration writes stored as v86 stores them, 32-bit
 * Command writes dropped, memory BARs kept where they started, guest RAM inside a larger
 * WebAssembly-like buffer that can be replaced), recording interrupt changes with the
 * guest's IF at that moment. The real emulator runs in test/guest/.
 */

const MiB = 1024 * 1024;
const RAM_OFFSET = 64 * 1024;
const BASE = 0xfe00_0000;
const IF = 0x200;
const PCI_ID = 7 << 3;

function fakeV86(ramBytes = 16 * MiB) {
  const wasm = { buffer: new ArrayBuffer(RAM_OFFSET + ramBytes) as ArrayBuffer };
  const flags = new Int32Array([0x202]);
  const irqs: string[] = [];
  const dirty: Array<[number, number]> = [];
  const mmio = new Map<
    number,
    { read8: (a: number) => number; write8: (a: number, v: number) => void; read32: (a: number) => number; write32: (a: number, v: number) => void }
  >();
  const devices: unknown[] = new Array(256).fill(undefined);
  devices[0] = { name: 'host bridge' };
  devices[5 << 3] = { name: 'ne2k' };
  const spaces: Int32Array[] = [];
  const isa = new Uint8Array(256);
  isa.set([10, 10, 11, 11], 0x60);
  const pci = {
    devices,
    isa_bridge_space8: isa,
    register_device(device: V86PciDevice) {
      const space = new Int32Array(64);
      space.set(new Int32Array(new Uint8Array(device.pci_space).buffer));
      spaces[device.pci_id] = space;
      devices[device.pci_id] = device;
      return space;
    },
    raise_irq: (id: number) => irqs.push(`raise ${id >> 3} IF=${(flags[0]! & IF) !== 0 ? 1 : 0}`),
    lower_irq: (id: number) => irqs.push(`lower ${id >> 3} IF=${(flags[0]! & IF) !== 0 ? 1 : 0}`),
    // As v86 stores them: bytes and words anywhere but the BARs, dwords but at the Command register.
    pci_write8(address: number, value: number) {
      new Uint8Array(spaces[address >> 8]!.buffer)[address & 0xff] = value;
    },
    pci_write16(address: number, value: number) {
      if ((address & 0xff) >= 0x10 && (address & 0xff) < 0x2c) return;
      new Uint16Array(spaces[address >> 8]!.buffer)[(address & 0xff) >>> 1] = value;
    },
    pci_write32(address: number, value: number) {
      const register = address & 0xff;
      if (register === 4 || (register >= 0x10 && register < 0x28)) return;
      spaces[address >> 8]![register >>> 2] = value;
    },
  };
  const cpu = {
    wasm_memory: wasm,
    get mem8() {
      return new Uint8Array(wasm.buffer, RAM_OFFSET, ramBytes);
    },
    flags,
    io: {
      mmap_register(base: number, size: number, read8: never, write8: never, read32: never, write32: never) {
        if (base % 0x20000 !== 0 || size % 0x20000 !== 0) throw new Error('mmap_register wants 128 KiB blocks');
        mmio.set(base, { read8, write8, read32, write32 });
      },
    },
    devices: { pci },
    jit_dirty_cache: (start: number, end: number) => dirty.push([start, end]),
  };
  /** The guest's side: its RAM, MMIO with signed addresses (as v86 passes them), configuration writes. */
  const guest = {
    ram: () => new DataView(wasm.buffer, RAM_OFFSET, ramBytes),
    read32: (address: number) => mmio.get(BASE)!.read32(address | 0) >>> 0,
    read8: (address: number) => mmio.get(BASE)!.read8(address | 0),
    write32: (address: number, value: number) => mmio.get(BASE)!.write32(address | 0, value | 0),
    write8: (address: number, value: number) => mmio.get(BASE)!.write8(address | 0, value),
    config: (size: 1 | 2 | 4, register: number, value: number) => pci[`pci_write${size * 8}` as 'pci_write8']((PCI_ID << 8) | register, value),
    space: () => new DataView(spaces[PCI_ID]!.buffer),
  };
  return { emulator: { v86: { cpu } }, wasm, flags, irqs, dirty, mmio, pci, guest, ramBytes };
}

/** Queue and data pages the guest uses (guest-physical). */
const ASQ = 0x10_0000;
const ACQ = 0x14_0000;
const DATA = 0x20_0000;

async function bound(t: Test) {
  const v86 = fakeV86();
  const { platform, binding } = await createV86Platform(v86.emulator);
  t.teardown(() => binding.close());
  const fn = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', modelOptions: { namespaceBytes: MiB } });
  binding.attach(fn);
  return { ...v86, platform, binding, fn };
}

t.test("attach puts the function on v86's bus, reset, with its BAR where v86 keeps it", async (t) => {
  const { platform, binding, fn, guest, mmio, pci } = await bound(t);
  t.equal(platform.options.dataPlane, 'main-thread');
  t.equal(platform.memory.bytes.byteOffset, RAM_OFFSET, "guest RAM is v86's, inside its memory");
  const space = guest.space();
  t.same(
    { vendor: space.getUint16(0, true), device: space.getUint16(2, true), command: space.getUint16(4, true), classCode: space.getUint32(8, true) >>> 8 },
    { vendor: 0x7e57, device: 0x0020, command: 0, classCode: 0x010802 },
    'identity from the function; Command 0 (reset)',
  );
  t.equal(space.getUint32(0x10, true), BASE, 'BAR0 at 0xfe000000');
  t.equal(space.getUint8(0x3d), 1, 'INTA');
  t.equal(fn.busMasterEnabled, false, 'Bus Master Enable is off until the guest turns it on');
  t.same([...mmio.keys()], [BASE]);
  t.equal(guest.read32(BASE), 0xffff_ffff, 'Memory Space off: MMIO reads all ones');
  t.throws(() => binding.attach(fn), /fn must be a function at a bus\/device\/function v86 leaves free/);
  const ne2k = platform.bus.addFunction({ bus: 0, device: 5, function: 0, model: 'nvme' });
  t.throws(() => binding.attach(ne2k), /v86 leaves free \(got "00:05.0"\)/, "v86's own NIC sits at 00:05.0");
  const far = platform.bus.addFunction({ bus: 1, device: 0, function: 0, model: 'nvme' });
  t.throws(() => binding.attach(far), /fn must be a function on bus 0 \(v86 has one PCI bus\)/);
  const copier = platform.bus.addFunction({ bus: 0, device: 9, function: 0, model: 'copy-engine' });
  t.throws(() => binding.attach(copier), /v86 has no MSI; 'copy-engine' has MSI only/);
  const low = platform.bus.addFunction({ bus: 0, device: 10, function: 0, model: 'nvme' });
  t.throws(() => binding.attach(low, { mmioBase: 0x10_0000 }), /options.mmioBase must be a multiple of 0x20000 above guest RAM/);
  binding.attach(low);
  t.same([...mmio.keys()], [BASE, BASE + 0x20000], 'the next function takes the next 128 KiB block');
  t.equal(pci.devices[10 << 3] !== undefined, true);
});

t.test("the guest's configuration writes reach the function: Command (also as a dword), Interrupt Line; read-only fields stay", async (t) => {
  const { fn, guest, binding } = await bound(t);
  guest.config(2, PCI_COMMAND, 0x0006);
  t.equal(fn.busMasterEnabled, true, 'Bus Master Enable: the IOMMU was told');
  t.equal(guest.space().getUint16(4, true), 0x0006);
  guest.config(4, PCI_COMMAND, 0xffff_0502);
  t.equal(fn.config.read16(PCI_COMMAND), 0x0502, 'a dword write, which v86 drops: Interrupt Disable, Memory Space, no Bus Master');
  t.equal(guest.space().getUint16(4, true), 0x0502, "v86's copy says so too");
  t.equal(guest.space().getUint16(6, true), 0, 'Status is not writable');
  guest.config(1, PCI_COMMAND + 1, 0x00);
  guest.config(1, PCI_COMMAND, 0x07);
  t.equal(fn.config.read16(PCI_COMMAND), 0x0007, 'byte writes');
  guest.config(1, PCI_INTERRUPT_LINE, 11);
  t.equal(fn.config.read8(PCI_INTERRUPT_LINE), 11);
  guest.config(2, 0x00, 0x1234);
  t.equal(guest.space().getUint16(0, true), 0x7e57, 'a write to the vendor ID is undone');
  guest.config(4, 0x10, 0xffff_ffff);
  t.equal(guest.space().getUint32(0x10, true), BASE, 'BARs are left to v86');
  t.equal(binding.stats.configWrites, 7);
});

t.test('a doorbell runs the controller inside the MMIO write; the INTx line follows, changed with IF held clear', async (t) => {
  const { fn, guest, platform, irqs, flags, dirty, binding } = await bound(t);
  guest.config(2, PCI_COMMAND, 0x0006);
  const assignment = new DeviceAssignment(platform, fn);
  t.equal(assignment.domainType, 'translate');
  t.equal(guest.read32(BASE + NVME.VS), 0x0001_0400, 'VS through MMIO');
  t.equal(guest.read8(BASE + NVME.VS + 2), 0x01, 'a byte of it');
  guest.write32(BASE + NVME.CAP, 0);
  guest.write8(BASE + NVME.CC, 1);
  t.equal(guest.read32(BASE + NVME.CAP), fn.registers!.read32(NVME.CAP), 'read-only CAP unchanged');
  t.equal(guest.read32(BASE + NVME.CC), 0, 'a byte write is dropped');
  t.equal(binding.stats.mmioWritesDropped, 1);
  // What Linux does: admin queues, then CC.EN.
  guest.write32(BASE + NVME.AQA, (15 << 16) | 15);
  guest.write32(BASE + NVME.ASQ, ASQ);
  guest.write32(BASE + NVME.ASQ + 4, 0);
  guest.write32(BASE + NVME.ACQ, ACQ);
  guest.write32(BASE + NVME.ACQ + 4, 0);
  guest.write32(BASE + NVME.CC, 0x0046_0001);
  t.equal(guest.read32(BASE + NVME.CSTS), NVME.CSTS_RDY, 'ready when the CC write returned');
  const ram = guest.ram();
  ram.setUint32(ASQ, NVME.ADMIN_IDENTIFY | (0x1234 << 16), true);
  ram.setUint32(ASQ + 24, DATA, true);
  ram.setUint32(ASQ + 40, NVME.CNS_CONTROLLER, true);
  dirty.length = 0;
  guest.write32(BASE + NVME.DOORBELLS, 1);
  t.equal(ram.getUint32(ACQ + 12, true), (0x1234 | (1 << 16)) >>> 0, 'completion posted (CID, phase 1, success) before the write returned');
  t.equal(ram.getUint16(DATA, true), 0x7e57, 'Identify data landed in guest RAM');
  t.same(irqs, ['raise 7 IF=0'], 'the line went up with IF clear (inside the guest instruction)');
  t.equal(flags[0], 0x202, 'and IF came back');
  t.ok(
    dirty.some(([start, end]) => start === DATA && end === DATA + 4096),
    "v86's JIT was told about the Identify page",
  );
  t.ok(
    dirty.some(([start, end]) => start === ACQ + 12 && end === ACQ + 16),
    'and about the completion entry',
  );
  guest.write32(BASE + NVME.DOORBELLS + 4, 1);
  t.same(irqs, ['raise 7 IF=0', 'lower 7 IF=0'], 'down as soon as the guest consumed the completion');
  // Interrupt Disable keeps the line down; clearing it brings the waiting completion's level back.
  guest.config(2, PCI_COMMAND, 0x0406);
  ram.setUint32(ASQ + 64, 0xc0 | (0x99 << 16), true);
  guest.write32(BASE + NVME.DOORBELLS, 2);
  t.equal(irqs.length, 2, 'no change while Interrupt Disable is set');
  guest.config(2, PCI_COMMAND, 0x0006);
  t.same(irqs.slice(2), ['raise 7 IF=0'], 'raised when the guest clears Interrupt Disable');
  guest.write32(BASE + NVME.DOORBELLS + 4, 2);
  t.same(binding.stats, { mmioReads: 5, mmioWrites: 11, mmioWritesDropped: 1, configWrites: 3, intxRaised: 2, intxLowered: 2 });
});

t.test('guest RAM that moves (v86 grew its memory) is followed; a batch continued later drives the line plainly and pulses it', async (t) => {
  const { fn, guest, platform, irqs, wasm } = await bound(t);
  guest.config(2, PCI_COMMAND, 0x0006);
  new DeviceAssignment(platform, fn);
  // 256-entry admin queues, enabled.
  guest.write32(BASE + NVME.AQA, (255 << 16) | 255);
  guest.write32(BASE + NVME.ASQ, ASQ);
  guest.write32(BASE + NVME.ACQ, ACQ);
  guest.write32(BASE + NVME.CC, 0x0046_0001);
  // v86's memory grows: a new buffer with the same contents, the old one detached.
  const old = wasm.buffer;
  const grown = new ArrayBuffer(old.byteLength + MiB);
  new Uint8Array(grown).set(new Uint8Array(old));
  wasm.buffer = grown;
  structuredClone(old, { transfer: [old] });
  const ram = guest.ram();
  for (let i = 0; i < 200; i++) ram.setUint32(ASQ + 64 * i, 0xc0 | (i << 16), true);
  guest.write32(BASE + NVME.DOORBELLS, 200);
  t.equal(platform.memory.bytes.buffer, grown, 'the platform follows the new buffer');
  t.equal(fn.registers!.read32(NVME.COMMANDS), 128, 'one batch (128 commands) inside the write');
  t.equal((ram.getUint32(ACQ + 16 * 127 + 12, true) >>> 16) & 1, 1, 'posted into the new buffer');
  t.same(irqs, ['raise 7 IF=0']);
  await new Promise((resolve) => setImmediate(resolve));
  await platform.devicesIdle();
  t.equal(fn.registers!.read32(NVME.COMMANDS), 200, 'the rest after a macrotask');
  t.same(irqs, ['raise 7 IF=0', 'lower 7 IF=1', 'raise 7 IF=1'], 'new completions while the line was high: a pulse, from outside the guest (IF as it was)');
});

t.test("what createV86Platform decides, and platforms that are not the emulator's, are refused; close() hands v86 back", async (t) => {
  const v86 = fakeV86();
  await t.rejects(createV86Platform(v86.emulator, { workers: 2 } as never), /options.workers must be absent: createV86Platform takes v86's RAM/);
  await t.rejects(createV86Platform(v86.emulator, { dataPlane: 'workers' } as never), /options.dataPlane must be absent/);
  await t.rejects(createV86Platform({}), /emulator must be a v86 emulator \(new V86\(\{...\}\)\) whose machine exists/);
  const other: Platform = await platformFor(t, { dataPlane: 'main-thread' });
  t.throws(() => new V86Binding(v86.emulator, other), /platform must be a platform over this emulator's RAM with dataPlane 'main-thread'/);
  const original = v86.pci.pci_write16;
  const { platform, binding } = await createV86Platform(v86.emulator);
  t.not(v86.pci.pci_write16, original, 'configuration writes are wrapped');
  const fn = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme' });
  binding.attach(fn);
  v86.guest.config(2, PCI_COMMAND, 0x0006);
  await binding.close();
  t.equal(v86.pci.pci_write16, original, 'and given back');
  t.equal(v86.guest.read32(BASE + NVME.VS), 0xffff_ffff, 'a closed binding answers all ones');
  t.throws(() => binding.attach(fn), /the platform is closed/);
});
