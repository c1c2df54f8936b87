import t, { type Test } from 'tap';
import { IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, TranslationFault } from '../../machine/index.js';
import { CopyEngineDriver } from '../../devices/drivers/copy-engine-driver.js';
import { COPY_ENGINE } from '../../devices/models/copy-engine.js';
import { PAGE, platformFor, randomBytes, rng } from '../helpers/fixture.js';

async function engine(t: Test, options: { ringEntries?: number; workers?: number } = {}) {
  const platform = await platformFor(t, { workers: options.workers ?? 2 });
  const fn = platform.bus.addFunction({ bus: 0, device: 4, function: 0, model: 'copy-engine' });
  const driver = new CopyEngineDriver(platform, fn, { ringEntries: options.ringEntries ?? 16 }).start();
  return { platform, fn, driver };
}

t.test('copies and fills through the IOMMU, completing by interrupt', async (t) => {
  const { platform, driver } = await engine(t);
  const random = rng(5);
  const source = platform.memory.allocatePages(3);
  const destination = platform.memory.allocatePages(3);
  const data = randomBytes(random, 3 * PAGE);
  source.forEach((pfn, i) => {
    platform.memory.write(pfn * PAGE, data.subarray(i * PAGE, (i + 1) * PAGE));
  });
  const from = driver.mapBuffer(source, IOMMU_ACCESS_READ);
  const to = driver.mapBuffer(destination, IOMMU_ACCESS_WRITE);
  t.same(await driver.copy(from.iova + 10, to.iova + 20, 3 * PAGE - 30), { cookie: 1, status: 0, bytes: 3 * PAGE - 30 });
  const copied = new Uint8Array(3 * PAGE - 30);
  for (let i = 0; i < copied.length; i++) copied[i] = platform.memory.read(to.physical(20 + i), 1)[0]!;
  t.same(copied, data.subarray(10, 3 * PAGE - 20), 'every byte arrived, across scattered pages');
  t.same(await driver.fill(to.iova, 100, 0x5c), { cookie: 2, status: 0, bytes: 100 });
  t.ok(platform.memory.read(to.physical(0), 100).every((b) => b === 0x5c));
  t.equal(driver.completed, 2);
  t.equal(driver.fn.interruptsDelivered >= 1, true, 'completions arrived by MSI');
});

t.test('the rings wrap around many times; the phase bit tells new completions from old', async (t) => {
  const { platform, driver } = await engine(t, { ringEntries: 4 });
  const pfns = platform.memory.allocatePages(2);
  const buffer = driver.mapBuffer(pfns);
  for (let round = 0; round < 25; round++) {
    const results = await Promise.all([driver.fill(buffer.iova, 64, round), driver.copy(buffer.iova, buffer.iova + PAGE, 64)]);
    t.same(
      results.map((r) => r.status),
      [0, 0],
      `round ${round}`,
    );
    t.ok(
      platform.memory.read(buffer.physical(PAGE), 64).every((b) => b === round),
      `round ${round} copied the fill`,
    );
  }
  t.equal(driver.completed, 50, 'every completion reaped once');
});

t.test('a full ring refuses more work until completions are reaped', async (t) => {
  const { platform, fn, driver } = await engine(t, { ringEntries: 4 });
  const buffer = driver.mapBuffer(platform.memory.allocatePages(1));
  fn.setBusMaster(false); // hold the device: nothing completes
  const pending = [driver.fill(buffer.iova, 8, 1), driver.fill(buffer.iova, 8, 2), driver.fill(buffer.iova, 8, 3)];
  await t.rejects(driver.fill(buffer.iova, 8, 4), /descriptor ring is full/);
  await platform.devicesIdle();
  t.equal(driver.inFlight, 3);
  fn.setBusMaster(true);
  t.same(driver.halted, { halted: true, faultType: 16 }, 'descriptor reads were blocked while Bus Master Enable was clear: the channel halted');
  await driver.reset();
  const lost = await Promise.allSettled(pending);
  t.same(
    lost.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
    'reset fails what the halted channel never ran',
  );
  t.same((await driver.fill(buffer.iova, 8, 4)).status, 0, 'the reset channel works again');
  t.equal(driver.halted.halted, false);
});

t.test('a fault in the middle of a batch fails that descriptor only', async (t) => {
  const { platform, driver } = await engine(t);
  const source = driver.mapBuffer(platform.memory.allocatePages(1), IOMMU_ACCESS_READ);
  const destination = driver.mapBuffer(platform.memory.allocatePages(1), IOMMU_ACCESS_WRITE);
  platform.memory.fill(source.physical(0), PAGE, 0x11);
  const unmapped = 0x7000_0000;
  const results = await Promise.all([
    driver.copy(source.iova, destination.iova, 256),
    driver.copy(unmapped, destination.iova + 256, 256),
    driver.copy(source.iova, destination.iova + 512, 256),
    driver.copy(source.iova, source.iova, 16), // read-only destination
  ]);
  t.same(
    results.map((r) => r.status),
    [0, COPY_ENGINE.STATUS_DMA_FAULT | TranslationFault, 0, COPY_ENGINE.STATUS_DMA_FAULT | 4],
  );
  t.ok(platform.memory.read(destination.physical(0), 256).every((b) => b === 0x11));
  t.ok(
    platform.memory.read(destination.physical(256), 256).every((b) => b === 0),
    'the failed copy wrote nothing',
  );
  t.ok(
    platform.memory.read(destination.physical(512), 256).every((b) => b === 0x11),
    'the next descriptor ran',
  );
  t.equal(driver.faults.length, 2, 'the driver heard of both faults');
  t.equal(driver.faults[0]!.Arm64!.FaultAddress, unmapped);
  t.equal(driver.failed, 2);
});

t.test('stop() leaves no domain, mapping, token or device behind', async (t) => {
  const { platform, fn, driver } = await engine(t);
  const tablesBefore = platform.pageTablesInUse;
  const free = platform.memory.freePageCount;
  const buffer = driver.mapBuffer(platform.memory.allocatePages(1));
  await driver.fill(buffer.iova, 8, 7);
  const domain = driver.domain;
  await driver.stop();
  t.equal(platform.describeDomain(domain), undefined, 'the domain is gone');
  t.equal(driver.mappedBuffers, 0);
  t.ok(platform.pageTablesInUse < tablesBefore, 'its page tables were retired');
  t.equal(platform.memory.freePageCount, free + 2 - 1, "both ring pages went back to guest memory (the buffer page is the test's)");
  // The function can be driven again from scratch: no DMA device was left behind.
  const again = new CopyEngineDriver(platform, fn).start();
  const second = again.mapBuffer(platform.memory.allocatePages(1));
  t.same((await again.fill(second.iova, 8, 9)).status, 0);
  await again.stop();
});
