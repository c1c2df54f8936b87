import t from 'tap';
import { DMA_BLOCKED, IOMMU_ACCESS_READ, PCI_REVISION_ID, PermissionFault, TranslationFault } from '../../machine/index.js';
import { NvmeDriver, NvmeError } from '../../devices/drivers/nvme-driver.js';
import { NVME } from '../../devices/models/nvme.js';
import { PAGE, randomBytes, rng } from '../helpers/fixture.js';
import { allEqual, BLOCK, firstDifference, nvmeWithDriver, peek, poke, rawController, scatteredBuffer } from '../helpers/nvme.js';

const MiB = 1024 * 1024;

t.test('Identify describes the controller and its 512-byte namespace', async (t) => {
  const { fn, driver } = await nvmeWithDriver(t, { namespaceBytes: 8 * MiB });
  const registers = fn.registers!;
  const cap = registers.read64(NVME.CAP);
  t.equal(cap % 2 ** 16, 4095, 'CAP.MQES: 4096 entries');
  t.equal(Math.floor(cap / 2 ** 32) & 0xf, 0, 'CAP.DSTRD 0');
  t.equal((Math.floor(cap / 2 ** 32) >>> 5) & 1, 1, 'CAP.CSS: NVM command set');
  t.equal(registers.read32(NVME.VS), 0x0001_0400);
  t.equal(registers.read32(NVME.CSTS) & (NVME.CSTS_RDY | NVME.CSTS_CFS), NVME.CSTS_RDY, 'ready, not fatal');
  t.equal(fn.config.read32(PCI_REVISION_ID) >>> 8, 0x010802, 'class: NVM Express controller');
  const id = driver.identity;
  t.match(id, {
    vendorId: 0x7e57,
    subsystemVendorId: 0x7e57,
    model: 'viommu NVMe-like controller',
    firmware: '1.0',
    controllerId: 1,
    version: 0x0001_0400,
    maxTransferBytes: 4 * MiB,
    sqes: 0x66,
    cqes: 0x44,
    maxCommands: 4096,
    namespaces: 1,
  });
  t.match(id.serial, /^VIOMMU-NVME-[0-9a-f]{4}$/);
  t.equal(id.subsystemNqn, `nqn.2024-01.org.viommu:nvme:${id.serial}`);
  t.match(id.namespace, { size: 16384, capacity: 16384, utilization: 16384, formats: 1, blockBytes: 512 });
  t.match(id.namespace.eui64, /^7e57[0-9a-f]{12}$/);
  t.same(await driver.identify(), id, 'Identify again says the same');
  // Identify variants through the admin queue.
  t.equal(
    (await driver.passthrough({ opcode: NVME.ADMIN_IDENTIFY, nsid: 2, prp1: 0, cdw10: NVME.CNS_NAMESPACE }, 'admin')).status,
    NVME.SC_INVALID_NAMESPACE | NVME.DNR,
  );
  t.equal((await driver.passthrough({ opcode: NVME.ADMIN_IDENTIFY, prp1: 0, cdw10: 0x10 }, 'admin')).status, NVME.SC_INVALID_FIELD | NVME.DNR, 'unknown CNS');
  await driver.stop();
});

t.test('writes and reads back random data: one block, two pages, PRP lists, chained PRP lists over scattered pages', async (t) => {
  const { platform, fn, driver } = await nvmeWithDriver(t, { namespaceBytes: 16 * MiB, memoryBytes: 48 * MiB });
  const random = rng(0x4e564d);
  const cases = [
    { name: 'one block', lba: 7, blocks: 1, offset: 0 },
    { name: 'one block across a page boundary (PRP1 offset, PRP2)', lba: 9, blocks: 1, offset: PAGE - 256 },
    { name: 'two pages (PRP1 + PRP2)', lba: 100, blocks: 16, offset: 0 },
    { name: 'three pages from an offset (one PRP list page)', lba: 200, blocks: 20, offset: 1028 },
    { name: '700 pages (a chained PRP list)', lba: 1000, blocks: 5600, offset: 0 },
    { name: 'the maximum transfer from an offset (1025 pages, three list pages)', lba: 20000, blocks: 8192, offset: 4 },
  ];
  for (const c of cases) {
    const bytes = c.blocks * BLOCK;
    const pages = Math.ceil((c.offset + bytes) / PAGE) + 1; // one spare page for the trailing canary
    const source = scatteredBuffer(platform, driver, pages, random);
    const target = scatteredBuffer(platform, driver, pages, random);
    const data = randomBytes(random, bytes);
    poke(platform, source, 0, new Uint8Array(pages * PAGE).fill(0x5a));
    poke(platform, source, c.offset, data);
    poke(platform, target, 0, new Uint8Array(pages * PAGE).fill(0xc3));
    t.same(await driver.write(c.lba, c.blocks, source, c.offset), { status: 0 }, `${c.name}: written`);
    t.same(await driver.read(c.lba, c.blocks, target, c.offset), { status: 0 }, `${c.name}: read`);
    t.equal(firstDifference(peek(platform, target, c.offset, bytes), data), -1, `${c.name}: every byte came back`);
    t.ok(allEqual(peek(platform, target, 0, c.offset), 0xc3), `${c.name}: the canary before the data is intact`);
    t.ok(allEqual(peek(platform, target, c.offset + bytes, pages * PAGE - c.offset - bytes), 0xc3), `${c.name}: the canary after it is intact`);
    driver.unmapBuffer(source);
    driver.unmapBuffer(target);
    platform.memory.freePages([...source.pfns, ...target.pfns]);
  }
  // The writes landed exactly where asked: neighbouring blocks are still blank.
  const around = scatteredBuffer(platform, driver, 1, random);
  t.same(await driver.read(6, 4, around), { status: 0 });
  const blocks = peek(platform, around, 0, 4 * BLOCK);
  t.ok(allEqual(blocks.subarray(0, BLOCK), 0), 'LBA 6 untouched');
  t.ok(allEqual(blocks.subarray(2 * BLOCK, 3 * BLOCK), 0), 'LBA 8 untouched');
  t.equal(driver.prpListPages, 8, 'the PRP list pages came from one chunk, reused');
  t.same(await driver.flush(), { status: 0 });
  t.equal(driver.failed, 0);
  t.ok(fn.interruptsDelivered >= cases.length, 'completions arrived by MSI');
  await driver.stop();
});

t.test('queues wrap around many times; phase tags tell new completions from old', async (t) => {
  const depth = 4;
  const { platform, driver } = await nvmeWithDriver(t, { queueDepth: depth });
  const random = rng(77);
  const out = scatteredBuffer(platform, driver, 2, random);
  const back = scatteredBuffer(platform, driver, 2, random);
  const before = driver.completed;
  const rounds = 61;
  for (let round = 0; round < rounds; round++) {
    const data = randomBytes(random, 2 * BLOCK);
    poke(platform, out, 100 * 4, data);
    // Three commands in flight (a queue of 4 entries holds 3): in order on one SQ, so the read sees the write.
    const results = await Promise.all([driver.write(round * 2, 2, out, 400), driver.read(round * 2, 2, back, 4), driver.flush()]);
    t.same(
      results.map((r) => r.status),
      [0, 0, 0],
      `round ${round}`,
    );
    t.equal(firstDifference(peek(platform, back, 4, 2 * BLOCK), data), -1, `round ${round}: read back what was written`);
  }
  const completions = driver.completed - before;
  t.equal(completions, 3 * rounds, 'every completion reaped exactly once');
  const state = driver.queueState;
  t.equal(state.cqHead, completions % depth);
  t.equal(state.phase, (1 ^ Math.floor(completions / depth)) & 1, 'the expected phase flipped on every pass');
  t.equal(state.tail, completions % depth);
  t.equal(state.sqHead, state.tail, 'the controller consumed every entry (SQHD)');
  t.equal(state.inFlight, 0);
  await driver.stop();
});

t.test('a full submission queue refuses new commands cleanly', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t, { queueDepth: 4 });
  const buffer = scatteredBuffer(platform, driver, 1, rng(3));
  // Submitted in one go: nothing can be reaped before this code yields, so the 4th finds the queue full.
  const accepted = [driver.write(0, 1, buffer), driver.write(1, 1, buffer), driver.read(0, 1, buffer, BLOCK)];
  const refused = driver.write(2, 1, buffer);
  const flushRefused = driver.flush();
  await t.rejects(refused, { name: 'NvmeError', code: 'queue-full' });
  await t.rejects(flushRefused, NvmeError);
  t.same(
    (await Promise.all(accepted)).map((r) => r.status),
    [0, 0, 0],
  );
  t.equal(driver.queueState.tail, 3, 'the refused commands took no SQ entry');
  t.same(await driver.write(2, 1, buffer), { status: 0 }, 'room again once the completions are reaped');
  await driver.stop();
});

t.test('a full completion queue pauses the controller until the head doorbell moves', async (t) => {
  // Admin SQ of 8 entries, admin CQ of 3: at most 2 completions outstanding.
  const raw = await rawController(t, { sqEntries: 8, cqEntries: 3 });
  const { platform, registers } = raw;
  t.equal(registers.read32(NVME.CSTS), NVME.CSTS_RDY);
  for (let i = 0; i < 5; i++) raw.submit(i, 0xc0, 0x100 + i); // a vendor opcode this controller rejects
  raw.ringSq(5);
  await platform.devicesIdle();
  const sqHead = () => registers.read32(NVME.SQ_STATE + NVME.Q_INDEX);
  t.same(
    [raw.completion(0), raw.completion(1)],
    [
      { sqhd: 1, sqid: 0, cid: 0x100, phase: 1, status: NVME.SC_INVALID_OPCODE | NVME.DNR },
      { sqhd: 2, sqid: 0, cid: 0x101, phase: 1, status: NVME.SC_INVALID_OPCODE | NVME.DNR },
    ],
  );
  t.equal(raw.completion(2).phase, 0, 'the third slot stays free: the queue is full at tail + 1 == head');
  t.equal(sqHead(), 2, 'the controller fetched no more');
  t.ok(registers.read32(NVME.CQ_FULL_STALLS) >= 1, 'it counted the stall');
  raw.ringSq(5); // another doorbell changes nothing while the CQ is full
  await platform.devicesIdle();
  t.equal(sqHead(), 2);
  t.same(raw.vectors, [0], 'the admin vector was raised once, for the batch that posted');
  raw.ringCq(2);
  await platform.devicesIdle();
  t.same(
    [raw.completion(2), raw.completion(0)],
    [
      { sqhd: 3, sqid: 0, cid: 0x102, phase: 1, status: NVME.SC_INVALID_OPCODE | NVME.DNR },
      { sqhd: 4, sqid: 0, cid: 0x103, phase: 0, status: NVME.SC_INVALID_OPCODE | NVME.DNR },
    ],
    'two more once two were freed; the wrap flipped the phase',
  );
  t.equal(sqHead(), 4);
  t.same(raw.vectors, [0, 0]);
  raw.ringCq(1);
  await platform.devicesIdle();
  t.same(raw.vectors, [0, 0, 0]);
  t.same(raw.completion(1), { sqhd: 5, sqid: 0, cid: 0x104, phase: 0, status: NVME.SC_INVALID_OPCODE | NVME.DNR });
  t.equal(registers.read32(NVME.COMMANDS), 5);
  t.equal(registers.read32(NVME.ERRORS), 5);
});

t.test('a fault in the middle of a batch fails that command only and leaves the namespace alone', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t);
  const random = rng(11);
  const good = scatteredBuffer(platform, driver, 4, random);
  const other = scatteredBuffer(platform, driver, 4, random);
  const gone = scatteredBuffer(platform, driver, 4, random);
  const readOnly = scatteredBuffer(platform, driver, 1, random, IOMMU_ACCESS_READ);
  driver.unmapBuffer(gone);
  const before = randomBytes(random, 8 * BLOCK);
  poke(platform, good, 0, before);
  t.same(await driver.write(200, 8, good), { status: 0 }, 'known contents at LBA 200');
  const first = randomBytes(random, 8 * BLOCK);
  const third = randomBytes(random, 8 * BLOCK);
  poke(platform, good, 0, first);
  poke(platform, other, 0, third);
  poke(platform, readOnly, 0, new Uint8Array(PAGE).fill(0xee));
  const results = await Promise.all([
    driver.write(100, 8, good),
    driver.write(200, 8, gone), // unmapped: Data Transfer Error, LBA 200 must keep its contents
    driver.write(300, 8, other),
    driver.read(100, 8, readOnly), // the device may not write a read-only mapping
    driver.read(100, 8, gone),
  ]);
  t.same(
    results.map((r) => r.status),
    [0, NVME.SC_DATA_TRANSFER_ERROR, 0, NVME.SC_DATA_TRANSFER_ERROR, NVME.SC_DATA_TRANSFER_ERROR],
  );
  t.ok(allEqual(peek(platform, readOnly, 0, PAGE), 0xee), 'the failed read wrote nothing into the read-only buffer');
  const check = scatteredBuffer(platform, driver, 4, random);
  t.same(await driver.read(200, 8, check), { status: 0 });
  t.equal(firstDifference(peek(platform, check, 0, 8 * BLOCK), before), -1, 'the failed write left the namespace unchanged');
  t.same(await driver.read(100, 8, check), { status: 0 });
  t.equal(firstDifference(peek(platform, check, 0, 8 * BLOCK), first), -1, 'the command before it completed');
  t.same(await driver.read(300, 8, check), { status: 0 });
  t.equal(firstDifference(peek(platform, check, 0, 8 * BLOCK), third), -1, 'the command after it completed');
  t.same(
    driver.faults.map((f) => f.Arm64!.FaultAddress),
    [gone.iova, readOnly.iova, gone.iova],
    'the IOMMU reported each fault to the driver',
  );
  // DW0 of a Data Transfer Error carries the fault type; a PRP list the device cannot read fails the same way.
  t.same(await driver.passthrough({ opcode: NVME.IO_READ, nsid: 1, prp1: readOnly.iova, cdw12: 0 }), {
    status: NVME.SC_DATA_TRANSFER_ERROR,
    dw0: PermissionFault,
  });
  const unmapped = 0x6000_0000;
  t.same(
    await driver.passthrough({ opcode: NVME.IO_WRITE, nsid: 1, prp1: good.iova, prp2: unmapped, cdw10: 200, cdw12: 15 }),
    { status: NVME.SC_DATA_TRANSFER_ERROR, dw0: TranslationFault },
    'a two-page write whose second page is unmapped: the first page was readable but must not land alone',
  );
  t.same(
    await driver.passthrough({ opcode: NVME.IO_WRITE, nsid: 1, prp1: good.iova, prp2: unmapped, cdw10: 200, cdw12: 23 }),
    { status: NVME.SC_DATA_TRANSFER_ERROR, dw0: TranslationFault },
    'a three-page write whose PRP list is unmapped',
  );
  t.same(await driver.read(200, 8, check), { status: 0 });
  t.equal(firstDifference(peek(platform, check, 0, 8 * BLOCK), before), -1, 'still unchanged');
  t.equal(driver.failed, 6);
  await driver.stop();
});

t.test('invalid commands complete with the status the spec names', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t, { namespaceBytes: 64 * 1024 });
  const blocks = driver.identity.namespace.size;
  t.equal(blocks, 128);
  const buffer = scatteredBuffer(platform, driver, 2, rng(5));
  const io = (command: Parameters<NvmeDriver['passthrough']>[0]) => driver.passthrough(command).then((c) => c.status);
  const admin = (command: Parameters<NvmeDriver['passthrough']>[0]) => driver.passthrough(command, 'admin').then((c) => c.status);
  t.equal(await io({ opcode: 0x7f, nsid: 1 }), NVME.SC_INVALID_OPCODE | NVME.DNR, 'unknown I/O opcode');
  t.equal(await admin({ opcode: 0xc0 }), NVME.SC_INVALID_OPCODE | NVME.DNR, 'unknown admin opcode');
  t.same(await driver.read(blocks - 1, 1, buffer), { status: 0 }, 'the last block is in range');
  t.same(await driver.read(blocks - 1, 2, buffer), { status: NVME.SC_LBA_OUT_OF_RANGE | NVME.DNR });
  t.same(await driver.write(blocks, 1, buffer), { status: NVME.SC_LBA_OUT_OF_RANGE | NVME.DNR });
  t.equal(await io({ opcode: NVME.IO_READ, nsid: 1, prp1: buffer.iova, cdw10: 0, cdw11: 1 }), NVME.SC_LBA_OUT_OF_RANGE | NVME.DNR, 'SLBA beyond 2^32');
  t.equal(await io({ opcode: NVME.IO_READ, nsid: 2, prp1: buffer.iova }), NVME.SC_INVALID_NAMESPACE | NVME.DNR);
  t.equal(await io({ opcode: NVME.IO_FLUSH, nsid: 0 }), NVME.SC_INVALID_NAMESPACE | NVME.DNR);
  t.equal(await io({ opcode: NVME.IO_FLUSH, nsid: 0xffff_ffff }), 0, 'flush of all namespaces');
  t.equal(await io({ opcode: NVME.IO_READ, nsid: 1, prp1: buffer.iova + 2 }), NVME.SC_INVALID_PRP_OFFSET | NVME.DNR, 'PRP1 must be dword aligned');
  t.equal(
    await io({ opcode: NVME.IO_READ, nsid: 1, prp1: buffer.iova + 4, prp2: buffer.iova + PAGE + 8, cdw12: 7 }),
    NVME.SC_INVALID_PRP_OFFSET | NVME.DNR,
    'PRP2 page entry with an offset',
  );
  const qid = (id: number, qsize: number) => ((qsize << 16) | id) >>> 0;
  const createCq = (id: number, qsize: number, cdw11: number, prp1 = buffer.iova) =>
    admin({ opcode: NVME.ADMIN_CREATE_IO_CQ, prp1, cdw10: qid(id, qsize), cdw11 });
  t.equal(await createCq(1, 3, 0x3), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR, 'CQ 1 exists');
  t.equal(await createCq(0, 3, 0x3), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR, 'QID 0 is the admin queue');
  t.equal(await createCq(NVME.MAX_QUEUES, 3, 0x3), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR, 'beyond the queues supported');
  t.equal(await createCq(2, 0, 0x3), NVME.SC_INVALID_QUEUE_SIZE | NVME.DNR, 'a one-entry queue');
  t.equal(await createCq(2, 4096, 0x3), NVME.SC_INVALID_QUEUE_SIZE | NVME.DNR, 'beyond CAP.MQES');
  t.equal(await createCq(2, 3, 0x2), NVME.SC_INVALID_FIELD | NVME.DNR, 'PC 0: CAP.CQR requires contiguous queues');
  t.equal(await createCq(2, 3, (40 << 16) | 0x3), NVME.SC_INVALID_INTERRUPT_VECTOR | NVME.DNR);
  t.equal(await createCq(2, 3, 0x3, buffer.iova + 64), NVME.SC_INVALID_PRP_OFFSET | NVME.DNR, 'a queue base must be page aligned');
  const createSq = (id: number, cqid: number, pc = 1) =>
    admin({ opcode: NVME.ADMIN_CREATE_IO_SQ, prp1: buffer.iova + PAGE, cdw10: qid(id, 3), cdw11: ((cqid << 16) | pc) >>> 0 });
  t.equal(await createSq(2, 9), NVME.SC_COMPLETION_QUEUE_INVALID | NVME.DNR, 'CQ 9 does not exist');
  t.equal(await createSq(2, 0), NVME.SC_COMPLETION_QUEUE_INVALID | NVME.DNR, 'the admin CQ cannot take I/O');
  t.equal(await createSq(1, 1), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR, 'SQ 1 exists');
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_CQ, cdw10: 1 }), NVME.SC_INVALID_QUEUE_DELETION | NVME.DNR, 'SQ 1 still uses CQ 1');
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_SQ, cdw10: 5 }), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR);
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_CQ, cdw10: 0 }), NVME.SC_INVALID_QUEUE_IDENTIFIER | NVME.DNR);
  // A second pair on CQ 2 works and is deleted in the right order.
  t.equal(await createCq(2, 3, (2 << 16) | 0x3), 0);
  t.equal(await createSq(2, 2), 0);
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_CQ, cdw10: 2 }), NVME.SC_INVALID_QUEUE_DELETION | NVME.DNR);
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_SQ, cdw10: 2 }), 0);
  t.equal(await admin({ opcode: NVME.ADMIN_DELETE_IO_CQ, cdw10: 2 }), 0);
  await t.rejects(
    driver.read(-1, 1, buffer),
    { name: 'RangeError', message: 'lba must be a non-negative safe integer (got -1)' },
    'the driver checks its own arguments',
  );
  await t.rejects(driver.read(0, 65537, buffer), { name: 'RangeError', message: 'blocks must be an integer in 1..65536 (got 65537)' }, 'at most 65536 blocks');
  await t.rejects(
    driver.read(0, 17, buffer),
    { name: 'RangeError', message: /^offset must be dword aligned, with its 8704 bytes within the \d+-byte buffer \(got 0\)$/ },
    'beyond the buffer',
  );
  await t.rejects(driver.read(0, 1, buffer, 2), { name: 'RangeError', message: /^offset must be dword aligned, .* \(got 2\)$/ }, 'not dword aligned');
  t.same(await driver.read(0, 1, buffer), { status: 0 }, 'the I/O queue still works');
  await driver.stop();
});

t.test('an unreachable admin submission queue is a controller fatal status', async (t) => {
  const raw = await rawController(t, { sqEntries: 4, cqEntries: 4, mapSq: false });
  const { platform, registers } = raw;
  t.equal(registers.read32(NVME.CSTS), NVME.CSTS_RDY, 'enabling touches no memory');
  raw.ringSq(1);
  await platform.devicesIdle();
  t.equal(registers.read32(NVME.CSTS), NVME.CSTS_RDY | NVME.CSTS_CFS, 'CSTS.CFS');
  t.equal(registers.read32(NVME.FATAL_STATUS), NVME.FATAL_DMA_FAULT | TranslationFault);
  t.same(raw.vectors, [0], 'the admin CQ vector was raised');
  t.equal(raw.completion(0).phase, 0, 'nothing was posted');
  t.equal(registers.read32(NVME.SQ_STATE + NVME.Q_INDEX), 0, 'the entry was not consumed');
  raw.ringSq(2);
  await platform.devicesIdle();
  t.same(raw.vectors, [0], 'a fatal controller ignores doorbells');
  registers.write32(NVME.CC, 0);
  await platform.devicesIdle();
  t.equal(registers.read32(NVME.CSTS), 0, 'a reset clears RDY and CFS');
  t.equal(registers.read32(NVME.SQ_STATE + NVME.Q_ENTRIES), 0, 'and the queues');
});

t.test('the driver fails its commands when the controller turns fatal, and still stops cleanly', async (t) => {
  const { platform, fn, driver } = await nvmeWithDriver(t);
  const buffer = scatteredBuffer(platform, driver, 1, rng(9));
  fn.setBusMaster(false); // the next SQ fetch is blocked
  await t.rejects(driver.write(0, 1, buffer), { name: 'NvmeError', code: 'fatal' });
  t.equal(driver.fatal, true);
  t.equal(fn.registers!.read32(NVME.FATAL_STATUS), NVME.FATAL_DMA_FAULT | DMA_BLOCKED);
  fn.setBusMaster(true);
  const domain = driver.domain;
  await driver.stop();
  t.equal(platform.describeDomain(domain), undefined);
  t.equal(fn.registers!.read32(NVME.CSTS), 0);
});

t.test('stop() leaves nothing behind and the function can be driven again', async (t) => {
  const platform0 = await nvmeWithDriver(t);
  const { platform, fn, driver } = platform0;
  await driver.stop(); // a driver that did nothing stops cleanly too
  const tables = platform.pageTablesInUse;
  const free = platform.memory.freePageCount;
  const first = await new NvmeDriver(platform, fn, { queueDepth: 32 }).start();
  const random = rng(21);
  const pfns = platform.memory.allocatePages(300);
  const buffer = first.mapBuffer(pfns);
  const data = randomBytes(random, 300 * PAGE);
  poke(platform, buffer, 0, data);
  t.same(await first.write(64, 2400, buffer), { status: 0 }, 'a transfer that needs a PRP list');
  t.ok(first.prpListPages > 0);
  const domain = first.domain;
  await first.stop();
  t.equal(platform.describeDomain(domain), undefined, 'the domain is gone');
  t.equal(first.mappedBuffers, 0, 'no mapping left');
  t.equal(first.prpListPages, 0, 'no PRP list page left');
  t.equal(platform.pageTablesInUse, tables, 'every page table was retired');
  t.equal(platform.memory.freePageCount, free - 300, "rings, identify and PRP pages went back to guest memory (the buffer is the test's)");
  t.equal(fn.registers!.read32(NVME.CSTS), 0, 'the controller is disabled');
  t.equal(fn.registers!.read32(NVME.SQ_STATE + NVME.QUEUE_STATE_BYTES + NVME.Q_ENTRIES), 0, 'no I/O queue is left');
  await t.rejects(first.read(0, 1, buffer), { code: 'stopped' }, 'a stopped driver refuses commands');
  await t.rejects(first.identify(), { code: 'stopped' });
  // Driven again from scratch (no DMA device was left behind); the namespace kept its data.
  const second = await new NvmeDriver(platform, fn).start();
  const again = second.mapBuffer(pfns);
  poke(platform, again, 0, new Uint8Array(300 * PAGE));
  t.same(await second.read(64, 2400, again), { status: 0 });
  t.equal(firstDifference(peek(platform, again, 0, 300 * PAGE), data), -1, 'the data survived the driver change');
  await second.stop();
  t.equal(platform.memory.freePageCount, free - 300);
  t.equal(fn.interruptsLost, 0, 'no interrupt arrived without a handler');
});
