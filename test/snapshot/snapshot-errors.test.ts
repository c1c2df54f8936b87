import t, { type Test } from 'tap';
import { pack, unpack } from 'msgpackr';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  restorePlatform,
  SNAPSHOT_VERSION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Platform,
} from '../../machine/index.js';
import { CopyEngineDriver } from '../../devices/drivers/copy-engine-driver.js';
import { buddy, ok, out, PAGE, pfnArray, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/** What saveState refuses, and every way a snapshot can be unusable: each answered by an error naming the part at fault. */

/** A small machine: one buddy domain with a mapping and an attached device. */
async function small(t: Test, workers = 0): Promise<Platform> {
  const platform = await platformFor(t, { workers, memoryBytes: 1024 * 1024 });
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(), null, domain), 'CreateDomainEx');
  ok(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  ok(V2.MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ, pfnArray(platform.memory.allocatePages(2)), null, null, null, out()), 'map');
  return platform;
}

/** The snapshot of `platform` as plain data, changed by `edit`, packed again. */
// biome-ignore lint/suspicious/noExplicitAny: the edits reach into a decoded snapshot of any shape.
function edited(platform: Platform, edit: (snapshot: any) => void): Uint8Array {
  const snapshot = unpack(platform.saveState());
  edit(snapshot);
  return pack(snapshot);
}

t.test('saveState refuses while work is in flight, on a closed platform, and with bad options', async (t) => {
  const platform = await small(t, 1);
  const fn = platform.bus.find(0, 1, 0)!;
  const dma = platform.dma(fn, { address: PAGE, length: 8 });
  t.throws(() => platform.saveState(), /cannot save the platform's state while 1 worker task\(s\) are in flight/);
  await dma;
  t.ok(platform.saveState() instanceof Uint8Array, 'once the DMA settled, it saves');
  t.throws(() => platform.saveState({ guestMemory: 'no' as never }), { name: 'TypeError', message: /options.guestMemory must be a boolean/ });
  t.throws(() => platform.saveState(null as never), TypeError);
  await platform.close();
  t.throws(() => platform.saveState(), /the platform is closed/);
});

t.test('saveState refuses while a device batch is in flight', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const fn = platform.bus.addFunction({ bus: 0, device: 4, function: 0, model: 'copy-engine' });
  const driver = new CopyEngineDriver(platform, fn, { ringEntries: 4 }).start();
  const buffer = driver.mapBuffer(platform.memory.allocatePages(1));
  const done = driver.fill(buffer.iova, 16, 7);
  t.throws(() => platform.saveState(), /cannot save the platform's state while a device batch is in flight/);
  await done;
  await platform.devicesIdle();
  t.ok(platform.saveState() instanceof Uint8Array, 'once the device is idle, it saves');
});

t.test('bytes that are not a snapshot', async (t) => {
  await t.rejects(restorePlatform('snapshot' as never), { name: 'TypeError', message: /snapshot must be a Uint8Array/ });
  await t.rejects(restorePlatform(new Uint8Array([0x92, 0x01])), /not a usable viommu snapshot: not a MessagePack document/);
  await t.rejects(restorePlatform(pack([1, 2, 3])), /the document is not an object/);
  await t.rejects(restorePlatform(pack({ format: 'qemu-vmstate', version: 1 })), /format is "qemu-vmstate", not 'viommu-snapshot'/);
  await t.rejects(restorePlatform(pack({ format: 'viommu-snapshot', version: SNAPSHOT_VERSION + 1 })), /version 2 is not supported/);
  const platform = await small(t);
  const whole = platform.saveState();
  await t.rejects(restorePlatform(whole.subarray(0, whole.length - 10)), /not a usable viommu snapshot/, 'a truncated snapshot');
});

t.test('restore options may not change the machine', async (t) => {
  const platform = await small(t);
  const snapshot = platform.saveState();
  await t.rejects(restorePlatform(snapshot, { arch: 'x64' } as never), {
    name: 'TypeError',
    message: /options.arch must be left out: the snapshot decides it/,
  });
  await t.rejects(
    restorePlatform(snapshot, { guestMemory: new SharedArrayBuffer(2 * 1024 * 1024) }),
    /options.guestMemory must be 1048576 bytes of RAM \(the snapshot's guest memory\)/,
  );
  await t.rejects(restorePlatform(snapshot, { workers: -1 }), /options.workers must be between 0 and 64/, 'run-time options are checked as usual');
  await t.rejects(restorePlatform(platform.saveState({ guestMemory: false })), /holds no guest memory .* pass options.guestMemory/);
});

t.test('a damaged part is named in the error', async (t) => {
  const platform = await small(t);
  // biome-ignore lint/suspicious/noExplicitAny: the edits reach into a decoded snapshot of any shape.
  const cases: Array<[string, (s: any) => void, RegExp]> = [
    ['overlapping extents', (s) => s.iommu.domains[0].extents.push(0, 4, 1, -1), /iommu.domains\[0\].extents overlap/],
    ['mapping beyond RAM', (s) => (s.iommu.domains[0].mappings[2] = 10_000), /frames 0x2710\+2 lie beyond guest memory/],
    ['mapping outside its extent', (s) => (s.iommu.domains[0].mappings[0] += 1), /mappings: pages 0x\w+\+2 are not an unmapped part of a logical mapping/],
    ['a mapping missing', (s) => (s.iommu.domains[0].mappings = []), /mappings cover 0 pages of its 2 logically mapped pages/],
    ['bad access bits', (s) => (s.iommu.domains[0].mappings[3] = 4), /bad access bits 4/],
    ['allocator of another size', (s) => s.iommu.domains[0].allocator.stacks.push([]), /allocator does not describe a buddy allocator of 48 address bits/],
    [
      'allocator blocks overlapping a block in use',
      (s) => s.iommu.domains[0].allocator.cache[0].push(s.iommu.domains[0].allocator.stacks[0][0]),
      /allocator does not describe/,
    ],
    ['unknown extent kind', (s) => (s.iommu.domains[0].extents[2] = 9), /unknown kind 9/],
    ['device in a missing domain', (s) => (s.iommu.devices[0].domain = 99), /iommu.devices\[0\].domain (is not an integer|names domain 99)/],
    ['device of a missing function', (s) => (s.iommu.devices[0].function = 3), /iommu.devices\[0\].function is not an integer in 0..0/],
    ['ids out of order', (s) => (s.iommu.domains[0].id = 0), /iommu.domains\[0\].id is not an integer/],
    ['domain type', (s) => (s.iommu.domains[0].type = 7), /iommu.domains\[0\].type is not an integer in 0..3/],
    ['config space size', (s) => (s.functions[0].config = new Uint8Array(64)), /functions\[0\].config is not a 256-byte configuration space/],
    ['unknown device model', (s) => (s.functions[0].model = 'gpu'), /functions\[0\]: unknown device model 'gpu'/],
    ['duplicate function', (s) => s.functions.push(s.functions[0]), /functions\[1\]: PCI function 00:01.0 already exists/],
    ['memory image size', (s) => (s.memory.bytes = 4096), /memory holds 4096 bytes, options.memoryBytes says 1048576/],
    ['memory image data', (s) => (s.memory.data = new Uint8Array(100)), /memory.data holds 100 bytes, not the \d+ pages its runs name/],
    ['page allocation', (s) => s.allocation.runs.push(0, 1), /allocation does not fit guest memory/],
    ['policy flag', (s) => (s.iommu.policy.userUnlocked = 'yes'), /iommu.policy is malformed/],
    ['policy', (s) => (s.iommu.policy.dmaGuardPolicy = 5), /iommu.policy.dmaGuardPolicy is not an integer in 0..2/],
  ];
  for (const [what, edit, message] of cases) {
    await t.rejects(restorePlatform(edited(platform, edit), { workers: 1 }), { name: 'TypeError', message }, what);
  }
  // A pristine snapshot of the same platform still restores: the checks are not merely strict.
  const restored = await restorePlatform(platform.saveState(), { workers: 1 });
  t.equal(restored.domains.size, 1);
  await restored.platform.close();
});
