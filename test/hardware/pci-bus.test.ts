import t from 'tap';
import { MODEL_LIST, VIOMMU_VENDOR_ID } from '../../devices/models/registry.js';
import { attachDeviceState, createDeviceBuffers } from '../../hardware/device-shared-state.js';
import { PciBus } from '../../hardware/pci-bus.js';
import {
  PCI_BAR0,
  PCI_CLASS_CODE,
  PCI_COMMAND,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../../hardware/pci-config-space.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import {
  DeviceContextTable,
  kContextBehindIommu,
  kContextBusMaster,
  kContextDomainField,
  kContextFlagsField,
  kContextInputMappingField,
  kContextPresent,
  kNoDomain,
} from '../../iommu/shared-memory/device-context-table.js';
import { InvalidationLog, kInvalidateDevice } from '../../iommu/shared-memory/invalidation-log.js';
import { DeviceContexts } from '../../iommu/control/device-contexts.js';
import { rng } from '../helpers/fixture.js';

const MMIO32_BASE = 0xc000_0000;

function setup(capacity = 8, inputMappingBase = 0) {
  const contexts = DeviceContextTable.create(capacity);
  const log = InvalidationLog.create(16);
  const devices = attachDeviceState(createDeviceBuffers(capacity, 1024 * 1024));
  const doorbells: string[] = [];
  const bus = new PciBus({ capacity, models: MODEL_LIST, devices, onDoorbell: (fn) => doorbells.push(fn.bdf), inputMappingBase });
  // The IOMMU's end of the bus hooks: it alone writes the device contexts.
  bus.setupIommu(new DeviceContexts(contexts, log));
  return { contexts, log, bus, doorbells };
}

/** What firmware reads back after writing all ones to a BAR register. */
function sizeBar(fn: PciFunction, register: number): number {
  const offset = PCI_BAR0 + register * 4;
  const saved = fn.config.read32(offset);
  fn.config.write32(offset, 0xffffffff);
  const mask = fn.config.read32(offset);
  fn.config.write32(offset, saved);
  return mask;
}

t.test('addFunction validates every option and a refused call changes nothing', async (t) => {
  const { contexts, log, bus } = setup(8);
  bus.addFunction({ bus: 0, device: 1, function: 0 });
  t.equal(log.sequence(), 1, 'enabling Bus Master on the first function published one record');
  const bad: Array<[string, unknown, string, RegExp]> = [
    ['bus 256', { bus: 256, device: 0, function: 0 }, 'RangeError', /options\.bus must be an integer in 0\.\.255 \(got 256\)/],
    ['bus -1', { bus: -1, device: 0, function: 0 }, 'RangeError', /options\.bus/],
    ['bus 1.5', { bus: 1.5, device: 0, function: 0 }, 'RangeError', /options\.bus/],
    ['bus "1"', { bus: '1', device: 0, function: 0 }, 'RangeError', /options\.bus/],
    ['no bus', { device: 0, function: 0 }, 'RangeError', /options\.bus/],
    ['device 32', { bus: 0, device: 32, function: 0 }, 'RangeError', /options\.device must be an integer in 0\.\.31/],
    ['function 8', { bus: 0, device: 0, function: 8 }, 'RangeError', /options\.function must be an integer in 0\.\.7/],
    ['externalFacing "yes"', { bus: 0, device: 2, function: 0, externalFacing: 'yes' }, 'TypeError', /options\.externalFacing must be a boolean/],
    ['behindIommu 1', { bus: 0, device: 2, function: 0, behindIommu: 1 }, 'TypeError', /options\.behindIommu must be a boolean/],
    ['busMasterEnable null', { bus: 0, device: 2, function: 0, busMasterEnable: null }, 'TypeError', /options\.busMasterEnable must be a boolean/],
    ['unknown model', { bus: 0, device: 2, function: 0, model: 'scsi' }, 'RangeError', /unknown device model 'scsi' \(known: dma-test, copy-engine/],
    ['duplicate BDF', { bus: 0, device: 1, function: 0 }, 'RangeError', /PCI function 00:01\.0 already exists on this bus/],
    [
      'BAR of 8 bytes',
      { bus: 0, device: 2, function: 0, bars: [{ size: 8 }] },
      'RangeError',
      /options\.bars\[\]\.size must be a power of two between 16 and 1073741824 for a memory32 BAR/,
    ],
    ['BAR of 3000 bytes', { bus: 0, device: 2, function: 0, bars: [{ size: 3000 }] }, 'RangeError', /options\.bars\[\]\.size/],
    ['BAR of 4 GiB', { bus: 0, device: 2, function: 0, bars: [{ size: 2 ** 32 }] }, 'RangeError', /options\.bars\[\]\.size/],
    ['null options', null, 'TypeError', /options must be an object/],
  ];
  for (const [what, options, name, message] of bad) {
    t.throws(() => bus.addFunction(options as never), { name, message }, what);
  }
  t.equal(bus.functions().length, 1, 'no function was added');
  t.equal(bus.find(0, 2, 0), undefined);
  t.equal(log.sequence(), 1, 'nothing was published');
  t.equal(contexts.get(1, kContextFlagsField), 0, 'slot 1 is still empty');
  t.equal(contexts.get(1, kContextDomainField), kNoDomain);
  t.ok(bus.addFunction({ bus: 0, device: 1, function: 1, externalFacing: true, behindIommu: false, busMasterEnable: false }), 'booleans are accepted');

  const small = setup(2).bus;
  small.addFunction({ bus: 0, device: 0, function: 0 });
  small.addFunction({ bus: 0, device: 0, function: 1 });
  t.throws(() => small.addFunction({ bus: 0, device: 0, function: 2 }), { name: 'RangeError', message: /the bus is full/ });
});

t.test('requester ID, input mapping ID, BDF and the device context', async (t) => {
  const { contexts, bus } = setup(64, 0x10000);
  const fn = bus.addFunction({ bus: 0x12, device: 0x1f, function: 5 });
  t.equal(fn.requesterId, 0x12fd);
  t.equal(fn.inputMappingId, 0x112fd);
  t.equal(fn.bdf, '12:1f.5');
  t.equal(String(fn), 'PciFunction(12:1f.5)');
  t.equal(fn.slot, 0);
  t.equal(bus.find(0x12, 0x1f, 5), fn);
  t.equal(bus.functionAt(0), fn);
  t.ok(bus.owns(fn));
  t.notOk(bus.owns({ ...fn }), 'a copy is not a function of this bus');
  t.equal(contexts.get(0, kContextDomainField), kNoDomain);
  t.equal(contexts.get(0, kContextInputMappingField), 0x112fd);
  t.equal(contexts.get(0, kContextFlagsField), kContextPresent | kContextBehindIommu | kContextBusMaster);
  const outside = bus.addFunction({ bus: 255, device: 31, function: 7, behindIommu: false });
  t.equal(outside.requesterId, 0xffff);
  t.equal(outside.behindIommu, false);
  t.equal(contexts.get(1, kContextFlagsField), kContextPresent | kContextBusMaster);
  const random = rng(0xbdf);
  const seen = new Set<number>([0x12fd, 0xffff]);
  let wrong = 0;
  while (bus.functions().length < 40) {
    const [b, d, f] = [Math.floor(random() * 256), Math.floor(random() * 32), Math.floor(random() * 8)];
    const id = b * 256 + d * 8 + f;
    if (seen.has(id)) continue;
    seen.add(id);
    const added = bus.addFunction({ bus: b, device: d, function: f });
    if (added.requesterId !== id || added.inputMappingId !== 0x10000 + id || contexts.get(added.slot, kContextInputMappingField) !== 0x10000 + id) wrong++;
    if (bus.find(b, d, f) !== added) wrong++;
  }
  t.equal(wrong, 0, 'requesterId = bus << 8 | device << 3 | function for 38 random functions');
});

t.test('config space identity registers', async (t) => {
  const { bus } = setup();
  const fn = bus.addFunction({ bus: 0, device: 3, function: 0 });
  const c = fn.config;
  t.equal(c.read16(PCI_VENDOR_ID), VIOMMU_VENDOR_ID);
  t.equal(c.read16(PCI_DEVICE_ID), 0x0001);
  t.equal(c.read32(PCI_VENDOR_ID), 0x0001_7e57);
  t.same([c.read8(PCI_REVISION_ID), c.read8(PCI_CLASS_CODE), c.read8(PCI_CLASS_CODE + 1), c.read8(PCI_CLASS_CODE + 2)], [1, 0x00, 0x00, 0xff]);
  t.equal(c.read8(PCI_HEADER_TYPE), 0);
  t.equal(c.read16(PCI_SUBSYSTEM_VENDOR_ID), 0x1af4);
  t.equal(c.read16(PCI_SUBSYSTEM_ID), 0x1100);
  t.equal(c.read8(PCI_INTERRUPT_PIN), 1);
  t.equal(c.read16(PCI_STATUS), 0);
  t.equal(c.read16(PCI_COMMAND), 0x0006, 'enumerated: Memory Space and Bus Master');
  const custom = bus.addFunction({ bus: 0, device: 4, function: 0, vendorId: 0x8086, deviceId: 0x1234, classCode: 0x010802, revisionId: 7 });
  t.equal(custom.config.read32(PCI_VENDOR_ID), 0x1234_8086);
  t.equal(custom.config.read32(PCI_REVISION_ID), 0x0108_0207, 'class 01 subclass 08 prog-if 02, revision 7');
});

t.test('read-only registers ignore writes; the command register keeps only its writable bits', async (t) => {
  const { bus } = setup();
  const fn = bus.addFunction({ bus: 0, device: 3, function: 0, busMasterEnable: false });
  const c = fn.config;
  const before = c.bytes.slice();
  for (const offset of [0x00, 0x08, 0x0c, 0x28, 0x2c, 0x30, 0x34, 0x40, 0xfc]) c.write32(offset, 0xffffffff);
  for (const offset of [PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_STATUS, PCI_REVISION_ID, PCI_HEADER_TYPE, PCI_SUBSYSTEM_ID, PCI_INTERRUPT_PIN])
    c.write16(offset, 0xffff);
  c.write32(PCI_BAR0 + 1, 0xffffffff);
  t.same(c.bytes, before, 'not one byte changed');
  c.write32(PCI_INTERRUPT_LINE, 0xffffffff);
  t.equal(c.read8(PCI_INTERRUPT_LINE), 0xff, 'interrupt line is writable');
  t.equal(c.read8(PCI_INTERRUPT_PIN), 1, 'interrupt pin is not');
  t.same(c.bytes.slice(0, PCI_INTERRUPT_LINE), before.slice(0, PCI_INTERRUPT_LINE));
  c.write16(PCI_COMMAND, 0xffff);
  t.equal(c.read16(PCI_COMMAND), 0x0547, 'I/O, Memory, Bus Master, parity, SERR, INTx disable');
  c.write32(PCI_COMMAND, 0xffff_fab8);
  t.equal(c.read16(PCI_COMMAND), 0x0000, 'a write clears what it does not set');
  t.equal(c.read16(PCI_STATUS), 0, 'the status half of a 32-bit write is ignored');
  c.write32(PCI_COMMAND, 0x0406);
  t.equal(c.read32(PCI_COMMAND), 0x0406);
});

t.test('Bus Master Enable: setBusMaster and command writes reach config space and the device context', async (t) => {
  const { contexts, log, bus } = setup();
  const fn = bus.addFunction({ bus: 0, device: 5, function: 0, busMasterEnable: false });
  const flags = () => contexts.get(fn.slot, kContextFlagsField);
  t.equal(fn.config.read16(PCI_COMMAND), 0, 'reset state');
  t.equal(fn.busMasterEnabled, false);
  t.equal(flags() & kContextBusMaster, 0);
  t.equal(log.sequence(), 0);
  fn.setBusMaster(true);
  t.equal(fn.config.read16(PCI_COMMAND), 0x0006);
  t.equal(fn.busMasterEnabled, true);
  t.equal(flags(), kContextPresent | kContextBehindIommu | kContextBusMaster);
  t.equal(log.sequence(), 1, 'workers are told the device changed');
  const at = log.offsetOf(0);
  t.same([log.records[at], log.records[at + 1]], [kInvalidateDevice, fn.slot]);
  fn.setBusMaster(true);
  t.equal(log.sequence(), 1, 'no change, no record');
  fn.setBusMaster(false);
  t.equal(fn.config.read16(PCI_COMMAND), 0x0002, 'Memory Space stays on');
  t.equal(flags() & kContextBusMaster, 0);
  t.equal(log.sequence(), 2);
  fn.config.write16(PCI_COMMAND, 0x0004);
  t.equal(fn.busMasterEnabled, true, 'a raw command write sets it too');
  t.equal(flags() & kContextBusMaster, kContextBusMaster);
  t.equal(log.sequence(), 3);
});

t.test('BAR sizing protocol and firmware-assigned addresses', async (t) => {
  const { bus } = setup();
  const fn = bus.addFunction({
    bus: 0,
    device: 6,
    function: 0,
    bars: [{ size: 4096 }, { size: 1 << 20, kind: 'memory64', prefetchable: true }, { size: 256, kind: 'io' }, { size: 64 * 1024 }],
  });
  const c = fn.config;
  const raw = [0, 1, 2, 3, 4, 5].map((r) => c.read32(PCI_BAR0 + r * 4));
  t.same(raw, [0xc000_0000, 0x0000_000c, 0x0000_0100, 0x0000_1001, 0xc001_0000, 0], 'assigned bases with their flag bits');
  t.same([c.barAddress(0), c.barAddress(1), c.barAddress(3), c.barAddress(4)], [0xc000_0000, 2 ** 40, 0x1000, 0xc001_0000]);
  const masks = [0, 1, 2, 3, 4, 5].map((r) => sizeBar(fn, r));
  t.same(masks, [(~(4096 - 1) | 0) >>> 0, (~((1 << 20) - 1) | 0xc) >>> 0, 0xffff_ffff, (~(256 - 1) | 0x1) >>> 0, (~(65536 - 1) | 0) >>> 0, 0]);
  t.same(masks.slice(0, 5), [0xffff_f000, 0xfff0_000c, 0xffff_ffff, 0xffff_ff01, 0xffff_0000], 'the same masks, spelled out');
  t.same(
    [0, 1, 2, 3, 4, 5].map((r) => c.read32(PCI_BAR0 + r * 4)),
    raw,
    'restoring the saved values restores the addresses',
  );
  c.write16(PCI_BAR0, 0xffff);
  c.write16(PCI_BAR0 + 2, 0xffff);
  t.equal(c.read32(PCI_BAR0), 0xffff_f000, 'sizing through two 16-bit writes');
  c.write32(PCI_BAR0, 0xd000_0abc);
  t.equal(c.read32(PCI_BAR0), 0xd000_0000, 'low bits of a 4 KiB BAR are hard-wired to zero');
  c.write32(PCI_BAR0 + 8, 0x1234_5678);
  t.equal(c.read32(PCI_BAR0 + 8), 0x1234_5678, 'the upper half of a 64-bit BAR is fully writable');
  t.equal(c.barAddress(1), 0x1234_5678 * 2 ** 32);
  const second = bus.addFunction({ bus: 0, device: 7, function: 0, bars: [{ size: 1 << 20 }, { size: 16 }, { size: 4096, kind: 'memory64' }] });
  t.same([second.config.barAddress(0), second.config.barAddress(1), second.config.barAddress(2)], [0xc010_0000, 0xc020_0000, 2 ** 40 + 2 ** 20]);
});

t.test('random BARs are naturally aligned, disjoint and inside their windows', async (t) => {
  const { bus } = setup(64);
  const random = rng(0xba5);
  const placed: Array<[start: number, size: number, kind: string]> = [];
  for (let device = 0; device < 24; device++) {
    const bars = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
      size: 2 ** (4 + Math.floor(random() * 17)),
      kind: random() < 0.3 ? ('memory64' as const) : ('memory32' as const),
    }));
    const fn = bus.addFunction({ bus: 1, device, function: 0, bars });
    let register = 0;
    for (const bar of bars) {
      placed.push([fn.config.barAddress(register), bar.size, bar.kind]);
      register += bar.kind === 'memory64' ? 2 : 1;
    }
  }
  const problems: string[] = [];
  const sorted = [...placed].sort((a, b) => a[0] - b[0]);
  for (const [start, size, kind] of placed) {
    if (start % size !== 0) problems.push(`0x${start.toString(16)} not aligned to ${size}`);
    if (kind === 'memory32' && (start < MMIO32_BASE || start + size > 2 ** 32)) problems.push(`32-bit BAR at 0x${start.toString(16)} outside the window`);
    if (kind === 'memory64' && start < 2 ** 40) problems.push(`64-bit BAR at 0x${start.toString(16)} below 2^40`);
  }
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i - 1]![0] + sorted[i - 1]![1] > sorted[i]![0]) problems.push(`overlap at 0x${sorted[i]![0].toString(16)}`);
  t.same(problems, [], `${placed.length} BARs`);
});

t.test('32-bit BARs that do not fit below 4 GiB are refused, never wrapped to address 0', async (t) => {
  for (const sizes of [[2 ** 30, 2 ** 30], [2 ** 31]]) {
    const { bus } = setup();
    const functions: PciFunction[] = [];
    let refused: unknown;
    for (const [i, size] of sizes.entries()) {
      try {
        functions.push(bus.addFunction({ bus: 0, device: i, function: 0, bars: [{ size }] }));
      } catch (error) {
        refused = error;
      }
    }
    const addresses = functions.map((fn, i) => [fn.config.barAddress(0), sizes[i]!] as const);
    const outside = addresses.filter(([start, size]) => start < MMIO32_BASE || start + size > 2 ** 32 || start % size !== 0);
    t.same(
      outside.map(([start]) => `0x${start.toString(16)}`),
      [],
      `sizes ${sizes.map((s) => `2^${Math.log2(s)}`).join(', ')}: every assigned BAR lies in [0xc0000000, 2^32)`,
    );
    if (refused !== undefined) t.type(refused, RangeError, 'a refusal is a RangeError');
  }
});

t.test('I/O BARs get distinct, non-zero port addresses', async (t) => {
  const { bus } = setup();
  const first = bus.addFunction({ bus: 0, device: 1, function: 0, bars: [{ size: 256, kind: 'io' }] });
  bus.addFunction({ bus: 0, device: 2, function: 0, bars: [{ size: 64 * 1024 }] });
  const second = bus.addFunction({ bus: 0, device: 3, function: 0, bars: [{ size: 256, kind: 'io' }] });
  const ports = [first.config.barAddress(0), second.config.barAddress(0)];
  t.equal(first.config.read32(PCI_BAR0) & 1, 1, 'I/O space indicator');
  t.ok(
    ports.every((p) => p !== 0 && p % 256 === 0 && p + 256 <= 0x10000),
    `ports ${ports.map((p) => `0x${p.toString(16)}`).join(', ')} are assigned (0 reads as unassigned), aligned and below 64 KiB`,
  );
  t.ok(Math.abs(ports[0]! - ports[1]!) >= 256, 'the two I/O ranges do not overlap');
});
