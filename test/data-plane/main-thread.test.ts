import t from 'tap';
import {
  createPlatform,
  restorePlatform,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  NVME,
  NvmeDriver,
  TranslationFault,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { internalsOf } from '../../machine/platform.js';
import { buddy, mdlOf, ok, out, PAGE, platformFor, randomBytes, rng, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { peek, poke, rawController, scatteredBuffer } from '../helpers/nvme.js';

/**
 * The data plane on the platform's own thread (options.dataPlane 'main-thread'), for
 * emulators whose RAM no worker can reach: no SharedArrayBuffer anywhere, guest RAM as a
 * view into the emulator's own buffer (which may move), doorbells served before the register
 * write returns, and device writes reported for the emulator's code cache.
 */

const MiB = 1024 * 1024;

/** A function in a Translate domain (buddy allocator) and `pages` fresh pages mapped for it. */
function mapped(platform: Awaited<ReturnType<typeof createPlatform>>, pages: number) {
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 3, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(), null, domain), 'CreateDomainEx');
  ok(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  const pfns = platform.memory.allocatePages(pages).reverse();
  const iova = out<number>();
  ok(V2.MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdlOf(platform, pfns), null, null, null, iova), 'MapLogicalRangeEx');
  return { V2, fn, domain: domain.value!, pfns, iova: iova.value! };
}

t.test('with dataPlane main-thread, nothing needs a SharedArrayBuffer: NVMe traffic and a fault with SharedArrayBuffer gone', async (t) => {
  const original = globalThis.SharedArrayBuffer;
  // What a page without cross-origin isolation looks like.
  Object.defineProperty(globalThis, 'SharedArrayBuffer', { value: undefined, configurable: true, writable: true });
  try {
    const platform = await createPlatform({ dataPlane: 'main-thread', memoryBytes: 16 * MiB });
    t.teardown(() => platform.close());
    t.equal(platform.memory.buffer.constructor, ArrayBuffer, 'guest RAM is a plain ArrayBuffer');
    t.equal(platform.options.workers, 0);
    const fn = platform.bus.addFunction({ bus: 0, device: 5, function: 0, model: 'nvme', modelOptions: { namespaceBytes: MiB } });
    const driver = await new NvmeDriver(platform, fn).start();
    const random = rng(41);
    const out = scatteredBuffer(platform, driver, 3, random);
    const back = scatteredBuffer(platform, driver, 3, random);
    const data = randomBytes(random, 3 * PAGE);
    poke(platform, out, 0, data);
    t.same(await driver.write(8, 24, out), { status: 0 });
    t.same(await driver.read(8, 24, back), { status: 0 });
    t.same(peek(platform, back, 0, 3 * PAGE), data, 'the data went through the namespace and back');
    driver.unmapBuffer(back);
    t.same(await driver.read(8, 8, back), { status: NVME.SC_DATA_TRANSFER_ERROR }, 'an unmapped buffer');
    t.same(
      driver.faults.map((f) => [f.Arm64?.FaultAddress, f.Arm64?.PhysicalDeviceObject]),
      [[back.iova, fn]],
      'its fault reached the FaultHandler',
    );
    await driver.stop();
    t.same(platform.faultStats(), { raised: 1, delivered: 1, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 });
  } finally {
    Object.defineProperty(globalThis, 'SharedArrayBuffer', { value: original, configurable: true, writable: true });
  }
});

t.test('a doorbell is served inside the register write: completion, interrupt and fault are there when it returns', async (t) => {
  const raw = await rawController(t, { sqEntries: 4, cqEntries: 4, dataPlane: 'main-thread' });
  raw.submit(0, 0xc0, 7);
  raw.ringSq(1);
  t.same(raw.completion(0), { sqhd: 1, sqid: 0, cid: 7, phase: 1, status: NVME.SC_INVALID_OPCODE | NVME.DNR }, 'posted before ringSq returned');
  t.same(raw.vectors, [0], 'and its interrupt delivered');
  t.same(raw.platform.deviceBatches, { run: 2, failed: 0 }, 'one batch for the enable, one for the doorbell');

  const platform = await platformFor(t, { dataPlane: 'main-thread', memoryBytes: 16 * MiB });
  const fn = platform.bus.addFunction({ bus: 0, device: 6, function: 0, model: 'nvme', modelOptions: { namespaceBytes: MiB } });
  const driver = await new NvmeDriver(platform, fn).start();
  const buffer = scatteredBuffer(platform, driver, 1, rng(5));
  driver.unmapBuffer(buffer);
  const read = driver.read(0, 1, buffer);
  t.equal(driver.faults.length, 1, 'the fault reached the FaultHandler before read() returned its promise');
  t.same(await read, { status: NVME.SC_DATA_TRANSFER_ERROR });
  await driver.stop();
});

t.test("guest RAM can be a view into the emulator's own buffer, at an offset: devices reach exactly that view", async (t) => {
  const outer = new ArrayBuffer(16 * MiB + 3 * PAGE);
  const whole = new Uint8Array(outer);
  whole.fill(0x5a);
  const view = new Uint8Array(outer, 2 * PAGE, 16 * MiB);
  view.fill(0);
  const platform = await platformFor(t, { dataPlane: 'main-thread', guestMemory: view });
  t.equal(platform.memory.bytes, view, 'adopted as is');
  t.equal(platform.memory.size, 16 * MiB);
  const { fn, pfns, iova } = mapped(platform, 2);
  const data = randomBytes(rng(6), PAGE + 100);
  t.same(await platform.dma(fn, { address: iova + 50, write: data }), { ok: true });
  // pfns were reversed: logical page 0 is the higher frame.
  t.same(whole.subarray(2 * PAGE + pfns[0]! * PAGE + 50, 2 * PAGE + pfns[0]! * PAGE + PAGE), data.subarray(0, PAGE - 50), 'first page, at the view offset');
  t.same(whole.subarray(2 * PAGE + pfns[1]! * PAGE, 2 * PAGE + pfns[1]! * PAGE + 150), data.subarray(PAGE - 50), 'second page');
  t.ok(
    whole.subarray(0, 2 * PAGE).every((b) => b === 0x5a) && whole.subarray(2 * PAGE + 16 * MiB).every((b) => b === 0x5a),
    'nothing outside the view was touched',
  );
  const batch = await platform.dmaBatch(fn, [
    { address: iova + 50, length: 8 },
    { address: iova + 3 * PAGE, length: 4 },
  ]);
  t.same(batch, [
    { ok: true, data: data.subarray(0, 8) },
    { ok: false, faultType: TranslationFault, faultAddress: iova + 3 * PAGE, blocked: false },
  ]);
  const port = platform.mainThreadPort(fn);
  t.equal(port, platform.mainThreadPort(fn), "mainThreadPort is the device's own port (one engine, one IOTLB)");
  t.equal(port.readU32(iova + 50), new DataView(data.buffer).getUint32(0, true));
  const spin = await platform.runInWorker(new URL('../fixtures/spin-reader.ts', import.meta.url), 'spinUntilFault', {
    device: fn.slot,
    iova: iova + 4 * PAGE,
    flags: new ArrayBuffer(4),
    milliseconds: 100,
  });
  t.same(spin, { reads: 1, fault: TranslationFault, gaveUp: false }, 'runInWorker runs on this thread, through the same port');
});

t.test('options.onDeviceWrite hears of every guest-RAM write a device makes, as physical ranges', async (t) => {
  const writes: Array<[number, number]> = [];
  const platform = await platformFor(t, { dataPlane: 'main-thread', memoryBytes: 16 * MiB, onDeviceWrite: (start, end) => writes.push([start, end]) });
  const { fn, pfns, iova } = mapped(platform, 3);
  t.same(await platform.dma(fn, { address: iova + 4000, write: new Uint8Array(PAGE + 200) }), { ok: true });
  t.same(
    writes,
    [
      [pfns[0]! * PAGE + 4000, pfns[0]! * PAGE + PAGE],
      [pfns[1]! * PAGE, pfns[1]! * PAGE + PAGE],
      [pfns[2]! * PAGE, pfns[2]! * PAGE + 104],
    ],
    'one range per physical fragment',
  );
  writes.length = 0;
  t.same(await platform.dma(fn, { address: iova + 8, length: 8 }), { ok: true, data: new Uint8Array(8) });
  t.same(writes, [], 'reads are not reported');
  const port = platform.mainThreadPort(fn);
  port.writeU32(iova + 16, 1);
  port.writeU64(iova + 24, 2);
  port.fill(iova + PAGE, 32, 7);
  port.copy(iova, iova + 2 * PAGE, 16);
  t.same(
    writes,
    [
      [pfns[0]! * PAGE + 16, pfns[0]! * PAGE + 20],
      [pfns[0]! * PAGE + 24, pfns[0]! * PAGE + 32],
      [pfns[1]! * PAGE, pfns[1]! * PAGE + 32],
      [pfns[2]! * PAGE, pfns[2]! * PAGE + 16],
    ],
    'scalar writes, fills and device-internal copies too',
  );
});

t.test('guest RAM that moves (a WebAssembly memory that grew) is followed before the next batch', async (t) => {
  let ram = new Uint8Array(new ArrayBuffer(16 * MiB));
  const platform = await platformFor(t, { dataPlane: 'main-thread', guestMemory: ram });
  internalsOf(platform).followGuestMemory(() => ram);
  const { fn, pfns, iova } = mapped(platform, 1);
  const data = randomBytes(rng(7), 64);
  platform.memory.write(pfns[0]! * PAGE, data);
  t.same(await platform.dma(fn, { address: iova, length: 64 }), { ok: true, data }, 'read through the first buffer (and cached in the micro-TLB)');
  // The emulator's memory grows: its contents move to a new, larger buffer and the old one is detached.
  const old = ram.buffer;
  const grown = new ArrayBuffer(16 * MiB + 64 * 1024);
  new Uint8Array(grown).set(ram);
  ram = new Uint8Array(grown, 0, 16 * MiB);
  structuredClone(old, { transfer: [old] });
  t.equal(old.byteLength, 0, 'the old buffer is detached');
  t.same(await platform.dma(fn, { address: iova, length: 64 }), { ok: true, data }, 'the device reads the same bytes from the new buffer');
  t.same(await platform.dma(fn, { address: iova + 64, write: Uint8Array.of(9, 8, 7) }), { ok: true });
  t.same(Array.from(ram.subarray(pfns[0]! * PAGE + 64, pfns[0]! * PAGE + 67)), [9, 8, 7], 'and writes into it');
  t.equal(platform.memory.bytes, ram, "the CPU's view followed too");
  t.same(platform.memory.read(pfns[0]! * PAGE, 4), data.subarray(0, 4));
  t.throws(() => platform.memory.rebind(new Uint8Array(8 * MiB)), /bytes must be a Uint8Array of 16777216 bytes at an offset that is a multiple of 8/);
  const workers = await platformFor(t, { workers: 0 });
  t.throws(() => internalsOf(workers).followGuestMemory(() => ram), /options.dataPlane must be 'main-thread' for guest memory that moves/);
});

t.test('combinations that cannot work are refused, naming the option', async (t) => {
  const plain = new Uint8Array(new ArrayBuffer(MiB));
  await t.rejects(createPlatform({ dataPlane: 'threads' as never }), {
    name: 'TypeError',
    message: /options.dataPlane must be 'workers' or 'main-thread' \(got "threads"\)/,
  });
  await t.rejects(createPlatform({ dataPlane: 'main-thread', workers: 2 }), /options.workers must be 0 or absent with dataPlane 'main-thread'/);
  await t.rejects(
    createPlatform({ guestMemory: plain, workers: 1 }),
    /options.guestMemory must be a SharedArrayBuffer or a view of one \(workers cannot reach a non-shared buffer: use dataPlane 'main-thread'\)/,
  );
  await t.rejects(createPlatform({ onDeviceWrite: () => {}, workers: 0 }), /options.onDeviceWrite must be absent with dataPlane 'workers'/);
  await t.rejects(createPlatform({ dataPlane: 'main-thread', onDeviceWrite: 5 as never }), /options.onDeviceWrite must be a function/);
  await t.rejects(createPlatform({ dataPlane: 'main-thread', guestMemory: 'ram' as never }), /options.guestMemory must be a SharedArrayBuffer or a Uint8Array/);
  await t.rejects(
    createPlatform({ dataPlane: 'main-thread', guestMemory: new Uint8Array(new ArrayBuffer(MiB + 8), 4, MiB) }),
    /options.guestMemory.byteOffset must be a multiple of 8 \(got 4\)/,
  );
  await t.rejects(
    createPlatform({ dataPlane: 'main-thread', guestMemory: new Uint8Array(new ArrayBuffer(MiB + 8), 0, MiB + 8) }),
    /options.guestMemory.byteLength must be a multiple of 4096/,
  );
});

t.test('a view of a SharedArrayBuffer at an offset serves DMA workers too', async (t) => {
  const outer = new SharedArrayBuffer(16 * MiB + PAGE);
  const platform = await platformFor(t, { workers: 1, guestMemory: new Uint8Array(outer, PAGE, 16 * MiB) });
  const { fn, pfns, iova } = mapped(platform, 1);
  t.same(await platform.dma(fn, { address: iova + 12, write: Uint8Array.of(1, 2, 3) }), { ok: true });
  t.same(Array.from(new Uint8Array(outer, PAGE + pfns[0]! * PAGE + 12, 3)), [1, 2, 3], 'a worker wrote at the view offset');
});

t.test("a snapshot restores onto the main-thread data plane, over the emulator's RAM", async (t) => {
  const first = await platformFor(t, { workers: 1, memoryBytes: 16 * MiB });
  const { fn, pfns, iova } = mapped(first, 1);
  first.memory.write(pfns[0]! * PAGE, [5, 6, 7, 8]);
  const saved = first.saveState({ guestMemory: false });
  const ram = new Uint8Array(new ArrayBuffer(16 * MiB + PAGE), PAGE, 16 * MiB);
  ram.set(first.memory.bytes);
  const { platform } = await restorePlatform(saved, { dataPlane: 'main-thread', guestMemory: ram });
  t.teardown(() => platform.close());
  t.equal(platform.options.workers, 0, 'no workers, whatever the saved platform had');
  t.equal(platform.memory.bytes, ram);
  t.same(await platform.dma(platform.bus.find(0, 3, 0)!, { address: iova, length: 4 }), { ok: true, data: Uint8Array.of(5, 6, 7, 8) }, 'the mapping came back');
  t.equal(fn.slot, platform.bus.find(0, 3, 0)!.slot);
  await t.rejects(
    restorePlatform(saved, { dataPlane: 'main-thread', guestMemory: new Uint8Array(8 * MiB) }),
    /options.guestMemory must be 16777216 bytes of RAM/,
  );
});
