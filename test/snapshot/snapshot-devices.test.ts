import t from 'tap';
import {
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  restorePlatform,
  STATUS_SUCCESS,
  type PciFunction,
  type Platform,
  type IOMMU_DMA_DEVICE,
} from '../../machine/index.js';
import { CopyEngineDriver } from '../../devices/drivers/copy-engine-driver.js';
import { NvmeDriver } from '../../devices/drivers/nvme-driver.js';
import { PAGE, platformFor, randomBytes, rng, v2Of } from '../helpers/fixture.js';
import { BLOCK, firstDifference, nvmeWithDriver, peek, poke, scatteredBuffer } from '../helpers/nvme.js';

/** Device state in a snapshot: register files, device-private memory (a disk's media), doorbells not yet served. */

const registerBytes = (fn: PciFunction) => new Uint8Array(fn.registers!.words.buffer, fn.registers!.words.byteOffset, fn.registers!.size).slice();

/** Gives the function back to a fresh driver: what a guest's driver does when it loads again after a resume. */
function releaseDevice(platform: Platform, deviceId: number, device: IOMMU_DMA_DEVICE): void {
  const V2 = v2Of(platform);
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS, `device ${deviceId} detached`);
  t.equal(V2.DeleteDevice(device), STATUS_SUCCESS, `device ${deviceId} deleted`);
}

t.test("an NVMe disk's media, registers and configuration survive; a reloaded driver reads the blocks back", async (t) => {
  const { platform, fn, driver } = await nvmeWithDriver(t, { namespaceBytes: 2 * 1024 * 1024 });
  const random = rng(31);
  const source = scatteredBuffer(platform, driver, 3, random);
  const data = randomBytes(random, 20 * BLOCK);
  poke(platform, source, 0, data);
  t.same(await driver.write(40, 20, source), { status: 0 }, 'written before the snapshot');
  await platform.devicesIdle();

  const restored = await restorePlatform(platform.saveState(), { workers: 1 });
  t.teardown(() => restored.platform.close());
  const again = restored.platform.bus.find(0, 5, 0)!;
  t.same(registerBytes(again), registerBytes(fn), 'the register file is identical');
  t.equal(firstDifference(restored.platform.bus.privateMemoryOf(again), platform.bus.privateMemoryOf(fn)), -1, 'the media is identical');
  t.equal(again.model, 'nvme');
  t.same(again.modelOptions, fn.modelOptions);

  const [deviceId, device] = [...restored.devices][0]!;
  releaseDevice(restored.platform, deviceId!, device);
  const reloaded = await new NvmeDriver(restored.platform, again).start();
  const target = scatteredBuffer(restored.platform, reloaded, 3, random);
  t.same(await reloaded.read(40, 20, target), { status: 0 }, 'read after the restore');
  t.equal(firstDifference(peek(restored.platform, target, 0, 20 * BLOCK), data), -1, 'every block came back');
});

t.test('a doorbell rung before the snapshot and never served runs on the restored platform', async (t) => {
  // No workers: the copy engine's doorbell rings, but nothing can run it.
  const platform = await platformFor(t, { workers: 0, onDeviceError: () => {} });
  const fn = platform.bus.addFunction({ bus: 0, device: 4, function: 0, model: 'copy-engine' });
  const driver = new CopyEngineDriver(platform, fn, { ringEntries: 8 }).start();
  const random = rng(8);
  const data = randomBytes(random, 2 * PAGE);
  const sourcePfns = platform.memory.allocatePages(2);
  sourcePfns.forEach((pfn, i) => {
    platform.memory.write(pfn * PAGE, data.subarray(i * PAGE, (i + 1) * PAGE));
  });
  const from = driver.mapBuffer(sourcePfns, IOMMU_ACCESS_READ);
  const to = driver.mapBuffer(platform.memory.allocatePages(2), IOMMU_ACCESS_WRITE);
  void driver.copy(from.iova, to.iova, 2 * PAGE);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(platform.memory.read(to.physical(0), 1)[0], 0, 'nothing was copied yet');

  const restored = await restorePlatform(platform.saveState(), { workers: 1 });
  t.teardown(() => restored.platform.close());
  await restored.platform.devicesIdle();
  const copied = new Uint8Array(2 * PAGE);
  copied.set(restored.platform.memory.read(to.physical(0), PAGE), 0);
  copied.set(restored.platform.memory.read(to.physical(PAGE), PAGE), PAGE);
  t.equal(firstDifference(copied, data), -1, 'the restored copy engine did the copy');
  t.equal(restored.platform.bus.find(0, 4, 0)!.interruptsLost, 1, 'its completion interrupt found no handler yet (handlers are registered again)');
  t.equal(platform.memory.read(to.physical(0), 1)[0], 0, 'the original platform is untouched');
});

t.test('wired NICs stay wired', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const a = platform.bus.addFunction({ bus: 0, device: 6, function: 0, model: 'nic' });
  const b = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nic' });
  platform.bus.addFunction({ bus: 0, device: 8, function: 0, model: 'nic' });
  platform.bus.connect(a, b);
  const restored = await restorePlatform(platform.saveState());
  t.teardown(() => restored.platform.close());
  const bus = restored.platform.bus;
  t.equal(bus.peerOf(bus.find(0, 6, 0)!), bus.find(0, 7, 0));
  t.equal(bus.peerOf(bus.find(0, 7, 0)!), bus.find(0, 6, 0));
  t.equal(bus.peerOf(bus.find(0, 8, 0)!), undefined);
});

t.test('custom device models come back from the URLs the snapshot names, or from the ones restore is given', async (t) => {
  const model = new URL('../fixtures/throwing-model.ts', import.meta.url);
  const platform = await platformFor(t, { workers: 0, deviceModels: [model] });
  platform.bus.addFunction({ bus: 0, device: 9, function: 0, model: 'throwing' });
  const saved = platform.saveState();
  const restored = await restorePlatform(saved);
  t.teardown(() => restored.platform.close());
  t.equal(restored.platform.bus.find(0, 9, 0)!.model, 'throwing', 'loaded from the saved URL');
  const moved = await restorePlatform(saved, { deviceModels: [model.href] });
  t.teardown(() => moved.platform.close());
  t.equal(moved.platform.bus.find(0, 9, 0)!.model, 'throwing', 'loaded from the URL given at restore');
  await t.rejects(
    restorePlatform(saved, { deviceModels: [] }),
    { name: 'TypeError', message: /functions\[0\]: unknown device model 'throwing'/ },
    'and named when missing',
  );
});
