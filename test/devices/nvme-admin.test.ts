import t from 'tap';
import { IOMMU_ACCESS_READ, NVME, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE } from '../../machine/index.js';
import { cqHeadDoorbell } from '../../devices/models/nvme.js';
import { PAGE, rng } from '../helpers/fixture.js';
import { BLOCK, nvmeWithDriver, peek, poke, rawController, scatteredBuffer } from '../helpers/nvme.js';

/**
 * The admin commands and registers Linux's nvme driver relies on, beyond what the project's
 * own driver uses (test/devices/nvme.test.ts): Identify CNS 02h/03h and the CNS it refuses,
 * Get Log Page, Set/Get Features, Abort, held Asynchronous Event Requests, PRP lists that do
 * not start on a page, INTMS/INTMC and the INTx level, read-only registers, and DNR. These
 * run with the data plane on the test's own thread (dataPlane 'main-thread'): the same model,
 * served inside the doorbell write.
 */

const DNR = NVME.DNR;

t.test('Identify: the active namespace list, the namespace descriptors (the EUI64 again), and the CNS values it refuses', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t, { dataPlane: 'main-thread' });
  const buffer = scatteredBuffer(platform, driver, 2, rng(1));
  const identify = (cdw10: number, nsid = 0) =>
    driver.passthrough({ opcode: NVME.ADMIN_IDENTIFY, nsid, prp1: buffer.iova, prp2: buffer.iova + PAGE, cdw10 }, 'admin');
  const words = (count: number) => Array.from({ length: count }, (_, i) => platform.memory.readU32(buffer.physical(4 * i)));

  poke(platform, buffer, 0, new Uint8Array(PAGE).fill(0xee));
  t.same(await identify(NVME.CNS_ACTIVE_NAMESPACES), { status: 0, dw0: 0 });
  t.same(words(3), [1, 0, 0], 'NSIDs above 0: just namespace 1, then zeros');
  poke(platform, buffer, 0, new Uint8Array(PAGE).fill(0xee));
  t.same(await identify(NVME.CNS_ACTIVE_NAMESPACES, 1), { status: 0, dw0: 0 });
  t.same(words(2), [0, 0], 'NSIDs above 1: none');
  t.equal((await identify(NVME.CNS_ACTIVE_NAMESPACES, 0xffff_ffff)).status, NVME.SC_INVALID_NAMESPACE | DNR);

  t.same(await identify(NVME.CNS_NAMESPACE_DESCRIPTORS, 1), { status: 0, dw0: 0 });
  const descriptor = peek(platform, buffer, 0, 16);
  t.same(Array.from(descriptor.subarray(0, 4)), [1, 8, 0, 0], 'NIDT 1 (EUI-64), NIDL 8');
  const eui64 = Array.from(descriptor.subarray(4, 12), (b) => b.toString(16).padStart(2, '0')).join('');
  t.equal(eui64, driver.identity.namespace.eui64, 'the same EUI64 as Identify Namespace');
  t.ok(
    peek(platform, buffer, 12, PAGE - 12).every((b) => b === 0),
    'then the end of the list (zeros)',
  );
  t.equal((await identify(NVME.CNS_NAMESPACE_DESCRIPTORS, 2)).status, NVME.SC_INVALID_NAMESPACE | DNR);

  for (const cns of [0x04, 0x05, 0x06, 0x07, 0x10, 0x1f]) {
    t.equal((await identify(cns, 1)).status, NVME.SC_INVALID_FIELD | DNR, `CNS 0x${cns.toString(16)}: Invalid Field, do not retry`);
  }
  // Identify Controller: what makes Linux configure events, flush, and read logs with offsets.
  t.same(await identify(NVME.CNS_CONTROLLER), { status: 0, dw0: 0 });
  const page = peek(platform, buffer, 0, PAGE);
  const view = new DataView(page.buffer);
  t.same(
    {
      oaes: view.getUint32(92, true),
      acl: page[258],
      aerl: page[259],
      frmw: page[260],
      lpa: page[261],
      npss: page[263],
      wctemp: view.getUint16(266, true),
      cctemp: view.getUint16(268, true),
      vwc: page[525],
      oncs: view.getUint16(520, true),
      sgls: view.getUint32(536, true),
      mp: view.getUint16(2048, true),
    },
    { oaes: 0x100, acl: 3, aerl: 3, frmw: 3, lpa: 4, npss: 0, wctemp: 343, cctemp: 358, vwc: 1, oncs: 0, sgls: 0, mp: 2500 },
  );
  await driver.stop();
});

t.test('Get Log Page: SMART counts the I/O, the error and firmware logs, offsets, mid-page buffers, and refusals', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t, { dataPlane: 'main-thread' });
  const random = rng(2);
  const data = scatteredBuffer(platform, driver, 4, random);
  t.same(await driver.write(0, 16, data), { status: 0 });
  t.same(await driver.write(16, 8, data), { status: 0 });
  for (let i = 0; i < 3; i++) t.same(await driver.read(0, 2, data), { status: 0 });
  const log = scatteredBuffer(platform, driver, 2, random);
  const getLog = (lid: number, bytes: number, offset = 0, at = 0, nsid = 0xffff_ffff) => {
    const numd = bytes / 4 - 1;
    const prp1 = log.iova + at;
    return driver.passthrough(
      { opcode: NVME.ADMIN_GET_LOG_PAGE, nsid, prp1, prp2: log.iova + PAGE, cdw10: ((numd & 0xffff) << 16) | lid, cdw11: numd >>> 16, cdw12: offset },
      'admin',
    );
  };
  // Linux's first admin data buffer after Identify: the SMART log, 512 bytes, at a mid-page address.
  poke(platform, log, 0, new Uint8Array(2 * PAGE).fill(0xee));
  t.same(await getLog(NVME.LOG_SMART_HEALTH, 512, 0, 0x200), { status: 0, dw0: 0 });
  const smart = peek(platform, log, 0x200, 512);
  const view = new DataView(smart.buffer);
  const u64 = (offset: number) => view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 2 ** 32;
  t.same(
    { warning: smart[0], temperature: view.getUint16(1, true), spare: smart[3], threshold: smart[4], used: smart[5] },
    { warning: 0, temperature: 313, spare: 100, threshold: 10, used: 0 },
  );
  t.same(
    { unitsRead: u64(32), unitsWritten: u64(48), reads: u64(64), writes: u64(80), powerCycles: u64(112) },
    { unitsRead: 1, unitsWritten: 1, reads: 3, writes: 2, powerCycles: 1 },
    '6 blocks read and 24 written: one data unit each (thousands of blocks, rounded up)',
  );
  t.ok(
    peek(platform, log, 0, 0x200).every((b) => b === 0xee),
    'nothing before the buffer',
  );
  t.ok(
    peek(platform, log, 0x400, PAGE - 0x400).every((b) => b === 0xee),
    'nothing after it',
  );

  // A log read across a page boundary (PRP1 with an offset, PRP2), from an offset into the log.
  poke(platform, log, 0, new Uint8Array(2 * PAGE).fill(0xee));
  t.same(await getLog(NVME.LOG_FIRMWARE_SLOT, 1024, 0, PAGE - 8), { status: 0, dw0: 0 });
  const firmware = peek(platform, log, PAGE - 8, 1024);
  t.equal(firmware[0], 1, 'AFI: slot 1 active');
  t.equal(String.fromCharCode(...firmware.subarray(8, 16)), '1.0     ', 'FRS1');
  t.ok(
    firmware.subarray(512).every((b) => b === 0),
    'beyond the 512-byte log: zeros',
  );
  t.same(await getLog(NVME.LOG_FIRMWARE_SLOT, 8, 8), { status: 0, dw0: 0 });
  t.equal(String.fromCharCode(...peek(platform, log, 0, 8)), '1.0     ', 'LPOL 8: from FRS1 on');
  t.same(await getLog(NVME.LOG_ERROR_INFORMATION, 128), { status: 0, dw0: 0 });
  t.ok(
    peek(platform, log, 0, 128).every((b) => b === 0),
    'the error log: one empty entry (error count 0), then zeros',
  );

  t.equal((await getLog(0x04, 512)).status, NVME.SC_INVALID_LOG_PAGE | DNR, 'no such log (changed namespaces)');
  t.equal((await getLog(0xc0, 512)).status, NVME.SC_INVALID_LOG_PAGE | DNR, 'no vendor logs');
  t.equal((await getLog(NVME.LOG_SMART_HEALTH, 512, 512)).status, NVME.SC_INVALID_FIELD | DNR, 'an offset at the end of the log');
  t.equal((await getLog(NVME.LOG_SMART_HEALTH, 16, 6)).status, NVME.SC_INVALID_FIELD | DNR, 'an offset that is not a dword multiple');
  t.equal((await getLog(NVME.LOG_SMART_HEALTH, 512, 0, 2)).status, NVME.SC_INVALID_PRP_OFFSET | DNR, 'PRP1 not dword aligned');
  await driver.stop();
});

t.test('Set and Get Features: values kept until reset, defaults, capabilities, and what is refused', async (t) => {
  const { driver } = await nvmeWithDriver(t, { dataPlane: 'main-thread' });
  const set = (cdw10: number, cdw11: number) => driver.passthrough({ opcode: NVME.ADMIN_SET_FEATURES, cdw10, cdw11 }, 'admin');
  const get = (fid: number, select = 0, cdw11 = 0) => driver.passthrough({ opcode: NVME.ADMIN_GET_FEATURES, cdw10: fid | (select << 8), cdw11 }, 'admin');
  t.same(await get(NVME.FEATURE_NUMBER_OF_QUEUES), { status: 0, dw0: 0x001e_001e }, '31 submission and 31 completion queues, zero-based');
  t.same(
    await set(NVME.FEATURE_NUMBER_OF_QUEUES, 0x0003_0003),
    { status: NVME.SC_COMMAND_SEQUENCE_ERROR | DNR, dw0: 0 },
    'refused once I/O queues exist (the driver made one pair)',
  );
  t.same(await set(NVME.FEATURE_ASYNC_EVENT_CONFIGURATION, 0x100), { status: 0, dw0: 0 }, 'namespace attribute notices: what Linux sets');
  t.same(await get(NVME.FEATURE_ASYNC_EVENT_CONFIGURATION), { status: 0, dw0: 0x100 });
  t.same(await get(NVME.FEATURE_ASYNC_EVENT_CONFIGURATION, 1), { status: 0, dw0: 0 }, 'SEL 1: the default');
  t.same(await get(NVME.FEATURE_ASYNC_EVENT_CONFIGURATION, 2), { status: 0, dw0: 0 }, 'SEL 2: saved, which is the default (nothing is saveable)');
  t.same(await get(NVME.FEATURE_ASYNC_EVENT_CONFIGURATION, 3), { status: 0, dw0: 0x4 }, 'SEL 3: changeable, not saveable, not per namespace');
  t.same(await get(NVME.FEATURE_VOLATILE_WRITE_CACHE), { status: 0, dw0: 1 }, 'the write cache is enabled');
  t.same(await set(NVME.FEATURE_ARBITRATION, 0x0302_0103), { status: 0, dw0: 0 });
  t.same(await get(NVME.FEATURE_ARBITRATION), { status: 0, dw0: 0x0302_0103 });
  // Temperature thresholds: over (THSEL 0) and under (THSEL 1) of the composite sensor (TMPSEL 0).
  t.same(await get(NVME.FEATURE_TEMPERATURE_THRESHOLD), { status: 0, dw0: 343 }, 'over: WCTEMP by default');
  t.same(await set(NVME.FEATURE_TEMPERATURE_THRESHOLD, 350), { status: 0, dw0: 0 });
  t.same(await set(NVME.FEATURE_TEMPERATURE_THRESHOLD, (1 << 20) | 270), { status: 0, dw0: 0 });
  t.same(await get(NVME.FEATURE_TEMPERATURE_THRESHOLD), { status: 0, dw0: 350 });
  t.same(await get(NVME.FEATURE_TEMPERATURE_THRESHOLD, 0, 1 << 20), { status: 0, dw0: 270 });
  t.same(await get(NVME.FEATURE_TEMPERATURE_THRESHOLD, 1, 1 << 20), { status: 0, dw0: 0 });
  t.equal((await set(NVME.FEATURE_TEMPERATURE_THRESHOLD, (1 << 16) | 300)).status, NVME.SC_INVALID_FIELD | DNR, 'TMPSEL 1: no such sensor');
  t.same(await set(NVME.FEATURE_INTERRUPT_VECTOR_CONFIGURATION, (1 << 16) | 5), { status: 0, dw0: 0 }, 'vector 5: coalescing disabled');
  t.same(await get(NVME.FEATURE_INTERRUPT_VECTOR_CONFIGURATION, 0, 5), { status: 0, dw0: (1 << 16) | 5 });
  t.same(await get(NVME.FEATURE_INTERRUPT_VECTOR_CONFIGURATION, 0, 6), { status: 0, dw0: 6 });
  t.equal((await get(NVME.FEATURE_INTERRUPT_VECTOR_CONFIGURATION, 0, 40)).status, NVME.SC_INVALID_FIELD | DNR);
  t.equal((await set(NVME.FEATURE_POWER_MANAGEMENT, 1)).status, NVME.SC_INVALID_FIELD | DNR, 'power state 1: there is only 0');
  t.equal((await set(NVME.FEATURE_ERROR_RECOVERY, 1 << 16)).status, NVME.SC_INVALID_FIELD | DNR, 'DULBE: no deallocated blocks');
  t.equal((await set(NVME.FEATURE_ARBITRATION | (1 << 31), 0)).status, NVME.SC_FEATURE_NOT_SAVEABLE | DNR, 'SV: nothing is saveable');
  for (const fid of [0x03, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x80]) {
    t.equal((await set(fid, 0)).status, NVME.SC_INVALID_FIELD | DNR, `Set Features 0x${fid.toString(16)}: not supported`);
    t.equal((await get(fid)).status, NVME.SC_INVALID_FIELD | DNR, `Get Features 0x${fid.toString(16)}: not supported`);
  }
  t.equal((await get(NVME.FEATURE_ARBITRATION, 4)).status, NVME.SC_INVALID_FIELD | DNR, 'SEL 4');
  await driver.stop();
});

t.test('Number of Queues before any I/O queue, Abort, held event requests and what a reset does to them', async (t) => {
  const raw = await rawController(t, { sqEntries: 16, cqEntries: 16, dataPlane: 'main-thread' });
  const { registers } = raw;
  raw.command(0, 0x10, { opcode: NVME.ADMIN_SET_FEATURES, cdw10: NVME.FEATURE_NUMBER_OF_QUEUES, cdw11: 0x0003_0003 });
  raw.command(1, 0x11, { opcode: NVME.ADMIN_SET_FEATURES, cdw10: NVME.FEATURE_NUMBER_OF_QUEUES, cdw11: 0xffff });
  raw.command(2, 0x12, { opcode: NVME.ADMIN_ABORT, cdw10: (0x5 << 16) | 1 });
  raw.ringSq(3);
  // Served inside the doorbell write: no waiting.
  t.same(raw.completion(0), { sqhd: 1, sqid: 0, cid: 0x10, phase: 1, status: 0 });
  t.equal(raw.dw0(0), 0x001e_001e, 'what the controller allocates, whatever was asked');
  t.same(raw.completion(1).status, NVME.SC_INVALID_FIELD | DNR, 'NSQR 65535 is invalid');
  t.same(raw.completion(2).status, 0);
  t.equal(raw.dw0(2), 1, 'Abort: command not aborted (every command completes in the batch that fetched it)');
  // Five Asynchronous Event Requests: four are held (AERL 3), the fifth exceeds the limit.
  for (let i = 0; i < 5; i++) raw.command(3 + i, 0x20 + i, { opcode: NVME.ADMIN_ASYNC_EVENT_REQUEST });
  raw.command(8, 0x30, { opcode: NVME.ADMIN_ABORT, cdw10: (0x20 << 16) | 0 });
  raw.ringSq(9);
  t.equal(registers.read32(NVME.AERS_OUTSTANDING), 4, 'four held');
  t.same(raw.completion(3), { sqhd: 8, sqid: 0, cid: 0x24, phase: 1, status: NVME.SC_ASYNC_EVENT_LIMIT_EXCEEDED | DNR }, 'the fifth completes at once');
  t.same(raw.completion(4), { sqhd: 9, sqid: 0, cid: 0x30, phase: 1, status: 0 }, 'Abort of a held request: answered, not aborted');
  t.equal(raw.dw0(4), 1);
  t.equal(raw.completion(5).phase, 0, 'nothing else was posted: the held requests take no completion');
  t.equal(registers.read32(NVME.SQ_STATE + NVME.Q_INDEX), 9, 'yet the controller consumed every entry');
  registers.write32(NVME.CC, 0);
  t.equal(registers.read32(NVME.AERS_OUTSTANDING), 0, 'a controller reset drops them');
  t.equal(registers.read32(NVME.CSTS), 0);
});

t.test('a PRP list need not start on a page: Linux takes short lists from a 256-byte pool', async (t) => {
  const { platform, driver } = await nvmeWithDriver(t, { dataPlane: 'main-thread' });
  const random = rng(3);
  const data = scatteredBuffer(platform, driver, 8, random);
  const list = scatteredBuffer(platform, driver, 1, random, IOMMU_ACCESS_READ);
  const bytes = 5 * PAGE;
  const expected = Uint8Array.from({ length: bytes }, (_, i) => (i * 7 + 3) & 0xff);
  poke(platform, data, 0, expected);
  t.same(await driver.write(40, bytes / BLOCK, data), { status: 0 }, 'written through the driver');
  // PRP1 = page 0, PRP2 = a list at offset 0x100 of its page holding pages 1..4 of another buffer.
  const target = scatteredBuffer(platform, driver, 8, random);
  for (let i = 0; i < 4; i++) platform.memory.writeU64(list.physical(0x100 + 8 * i), target.iova + (i + 1) * PAGE);
  t.same(await driver.passthrough({ opcode: NVME.IO_READ, nsid: 1, prp1: target.iova, prp2: list.iova + 0x100, cdw10: 40, cdw12: bytes / BLOCK - 1 }), {
    status: 0,
    dw0: 0,
  });
  t.same(peek(platform, target, 0, bytes), expected, 'every byte, through a list at page offset 0x100');
  // A list whose first entry is the last of its page: that entry points to the next list page.
  const next = scatteredBuffer(platform, driver, 1, random, IOMMU_ACCESS_READ);
  platform.memory.writeU64(list.physical(PAGE - 8), next.iova);
  for (let i = 0; i < 4; i++) platform.memory.writeU64(next.physical(8 * i), target.iova + (i + 1) * PAGE);
  poke(platform, target, 0, new Uint8Array(bytes));
  t.same(await driver.passthrough({ opcode: NVME.IO_READ, nsid: 1, prp1: target.iova, prp2: list.iova + PAGE - 8, cdw10: 40, cdw12: bytes / BLOCK - 1 }), {
    status: 0,
    dw0: 0,
  });
  t.same(peek(platform, target, 0, bytes), expected, 'chained from the last entry of the first list page');
  t.equal(
    (await driver.passthrough({ opcode: NVME.IO_READ, nsid: 1, prp1: target.iova, prp2: list.iova + 0x104, cdw10: 40, cdw12: bytes / BLOCK - 1 })).status,
    NVME.SC_INVALID_PRP_OFFSET | DNR,
    'a list must be 8-byte aligned',
  );
  await driver.stop();
});

t.test('INTx: a level while completions wait, masked by INTMS (INTMC unmasks) and by Interrupt Disable; read-only registers stay', async (t) => {
  const raw = await rawController(t, { sqEntries: 8, cqEntries: 8, dataPlane: 'main-thread' });
  const { fn, registers } = raw;
  t.equal(fn.hasIntx, true, "the 'nvme' model has an INTx pin");
  t.equal(fn.intxAsserted, false, 'nothing to consume yet');
  raw.submit(0, 0xc0, 1);
  raw.submit(1, 0xc0, 2);
  raw.ringSq(2);
  t.equal(fn.intxAsserted, true, 'two completions wait');
  registers.write32(NVME.INTMS, 0x1);
  t.same([registers.read32(NVME.INTMS), registers.read32(NVME.INTMC)], [1, 1], 'INTMS sets the mask; both registers read it');
  t.equal(fn.intxAsserted, false, 'vector 0 masked');
  registers.write32(NVME.INTMS, 0x4);
  t.same([registers.read32(NVME.INTMS), registers.read32(NVME.INTMC)], [5, 5], 'writing a 1 sets, a 0 leaves alone');
  registers.write32(NVME.INTMC, 0x1);
  t.same([registers.read32(NVME.INTMS), registers.read32(NVME.INTMC)], [4, 4], 'INTMC clears');
  t.equal(fn.intxAsserted, true, 'unmasked: asserted again');
  fn.config.write16(PCI_COMMAND, fn.config.read16(PCI_COMMAND) | PCI_COMMAND_INTX_DISABLE);
  t.equal(fn.intxAsserted, false, 'Interrupt Disable in the Command register');
  fn.config.write16(PCI_COMMAND, fn.config.read16(PCI_COMMAND) & ~PCI_COMMAND_INTX_DISABLE);
  registers.write32(cqHeadDoorbell(0), 1);
  t.equal(fn.intxAsserted, true, 'one completion still waits');
  registers.write32(cqHeadDoorbell(0), 2);
  t.equal(fn.intxAsserted, false, 'deasserted once the driver consumed them all');
  // Writes to read-only registers are dropped, as hardware drops them.
  const before = [NVME.CAP, NVME.CAP + 4, NVME.VS, NVME.CSTS, NVME.COMMANDS, NVME.NAMESPACE_BLOCKS, NVME.SQ_STATE + NVME.Q_ENTRIES].map((o) =>
    registers.read32(o),
  );
  for (const offset of [NVME.CAP, NVME.CAP + 4, NVME.VS, NVME.CSTS, NVME.COMMANDS, NVME.NAMESPACE_BLOCKS, NVME.SQ_STATE + NVME.Q_ENTRIES])
    registers.write32(offset, 0xdead);
  t.same(
    [NVME.CAP, NVME.CAP + 4, NVME.VS, NVME.CSTS, NVME.COMMANDS, NVME.NAMESPACE_BLOCKS, NVME.SQ_STATE + NVME.Q_ENTRIES].map((o) => registers.read32(o)),
    before,
  );
  t.equal(registers.read32(NVME.CSTS), NVME.CSTS_RDY);
  registers.write32(NVME.CC, 0);
  t.same([registers.read32(NVME.INTMS), registers.read32(NVME.INTMC)], [0, 0], 'a controller reset clears the mask');
});
