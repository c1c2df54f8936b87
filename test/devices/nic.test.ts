import t, { type Test } from 'tap';
import { TranslationFault, type Platform, type PciFunction } from '../../machine/index.js';
import { NicDriver, type NicDriverOptions } from '../../devices/drivers/nic-driver.js';
import { NIC, nicErrorStatus, WIRE, WireQueue, wireRecordBytes } from '../../devices/models/nic.js';
import { wireMemoryBytes } from '../../devices/models/nic-wire.js';
import { PAGE, platformFor, randomBytes, rng } from '../helpers/fixture.js';

const CANARY = 0xa5;
const DONE = NIC.DESC_DONE;
const TX_FAULT = nicErrorStatus(NIC.ERROR_DMA_FAULT | TranslationFault);
const RX_FAULT = nicErrorStatus(NIC.ERROR_DMA_FAULT | TranslationFault, true);
const quiet = { txPackets: 0, txBytes: 0, txErrors: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0, rxErrors: 0 };

function addNic(platform: Platform, device: number, wireBytes?: number): PciFunction {
  return platform.bus.addFunction({ bus: 0, device, function: 0, model: 'nic', modelOptions: wireBytes === undefined ? {} : { wireBytes } });
}

/** Two NICs on one cable, each with its driver started. */
async function wiredPair(t: Test, a: NicDriverOptions = {}, b: NicDriverOptions = {}, wireBytes: [number?, number?] = []) {
  const platform = await platformFor(t, { workers: 2 });
  const fnA = addNic(platform, 3, wireBytes[0]);
  const fnB = addNic(platform, 4, wireBytes[1]);
  platform.bus.connect(fnA, fnB);
  const nicA = await new NicDriver(platform, fnA, a).start();
  const nicB = await new NicDriver(platform, fnB, b).start();
  fillGuards(platform, nicA);
  fillGuards(platform, nicB);
  return { platform, a: nicA, b: nicB };
}

function packets(random: () => number, count: number, min: number, max: number): Uint8Array[] {
  return Array.from({ length: count }, () => randomBytes(random, min + Math.floor(random() * (max - min + 1))));
}

async function receiveAll(driver: NicDriver, count: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  for (let i = 0; i < count; i++) got.push(await driver.receive());
  return got;
}

const sum = (list: readonly Uint8Array[]) => list.reduce((n, p) => n + p.length, 0);

/** Fills every receive buffer's pages with the canary (the device overwrites only the buffers). */
function fillGuards(platform: Platform, driver: NicDriver): void {
  for (const buffer of driver.rxBufferMappings) for (const pfn of buffer.pfns) platform.memory.fill(pfn * PAGE, PAGE, CANARY);
}

/** Bytes around the receive buffers that differ from the canary (0: the device stayed inside). */
function damagedGuards(platform: Platform, driver: NicDriver): number {
  let damaged = 0;
  const start = NicDriver.BUFFER_OFFSET;
  const end = start + driver.rxBufferBytes;
  for (const buffer of driver.rxBufferMappings) {
    for (let offset = 0; offset < buffer.bytes; offset++) {
      if ((offset < start || offset >= end) && platform.memory.bytes[buffer.physical(offset)] !== CANARY) damaged++;
    }
  }
  return damaged;
}

/** Random fragment lengths for a packet: enough for the TX buffers, sometimes an empty one. */
function fragmentsFor(random: () => number, length: number, bufferBytes: number): number[] {
  const count = Math.ceil(length / bufferBytes) + Math.floor(random() * 3);
  const lengths = new Array<number>(count).fill(0);
  let left = length;
  for (let i = 0; left > 0; i = (i + 1) % count) {
    const n = Math.min(left, bufferBytes - lengths[i]!, 1 + Math.floor(random() * 700));
    lengths[i] = lengths[i]! + n;
    left -= n;
  }
  if (random() < 0.3) lengths.splice(Math.floor(random() * count), 0, 0);
  return lengths;
}

t.test('the wire queue: records wrap around its end, a full queue counts drops', async (t) => {
  const memory = new Uint8Array(new SharedArrayBuffer(wireMemoryBytes(WIRE.MIN_BYTES)));
  const producer = WireQueue.of(memory, WIRE.QUEUE_WIRE)!;
  const consumer = WireQueue.of(memory, WIRE.QUEUE_WIRE)!;
  t.equal(producer.capacity, WIRE.MIN_BYTES);
  const random = rng(1);
  const out = new Uint8Array(WIRE.MIN_BYTES);
  let position = 0;
  let straddling = 0;
  let dropped = 0;
  let mismatches = 0;
  for (let round = 0; round < 300; round++) {
    // The producer fills, sometimes beyond capacity; then the consumer drains.
    const batch = packets(random, 2 + Math.floor(random() * 8), 1, 1200);
    const accepted = batch.filter((p, i) => producer.push(p, 0, p.length, i));
    dropped += batch.length - accepted.length;
    for (const p of accepted) {
      if (position + WIRE.RECORD_HEADER_BYTES + p.length > producer.capacity) straddling++;
      position = (position + wireRecordBytes(p.length)) % producer.capacity;
      const length = consumer.pop(out);
      if (length !== p.length || out.subarray(0, length).some((b, i) => b !== p[i])) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'every queued packet came out whole and in order');
  t.ok(straddling > 20, `${straddling} packets straddled the end of the queue`);
  t.ok(dropped > 20, `${dropped} packets found the queue full`);
  t.equal(consumer.takeDrops(), dropped, 'the header counted every drop');
  t.equal(consumer.takeDrops(), 0, 'taking the drops resets the count');
  t.same([consumer.peekLength(), consumer.used], [-1, 0], 'empty');
  t.equal(WireQueue.of(memory, WIRE.QUEUE_LOOPBACK)!.used, 0, 'the loopback queue is separate');
  t.notOk(producer.push(new Uint8Array(WIRE.MIN_BYTES), 0, WIRE.MIN_BYTES, 0), 'a packet as large as the queue never fits');
  t.equal(consumer.takeDrops(), 1);
});

t.test('loopback: seeded random packets come back byte-exact and in order', async (t) => {
  const platform = await platformFor(t, { workers: 2 });
  const fn = addNic(platform, 5);
  const driver = await new NicDriver(platform, fn, { loopback: true }).start();
  fillGuards(platform, driver);
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  t.equal(driver.mac, `02:7e:57:00:${hex(fn.slot >> 8)}:${hex(fn.slot & 0xff)}`, 'the MAC is derived from the slot');
  const sent = packets(rng(11), 40, 1, 1500);
  const statuses = await Promise.all(sent.map((p) => driver.send(p)));
  t.same(
    statuses,
    sent.map(() => DONE),
    'every packet transmitted',
  );
  t.same(await receiveAll(driver, sent.length), sent, 'every packet came back, byte-exact, in order');
  await platform.devicesIdle();
  t.same(driver.stats(), { ...quiet, txPackets: 40, txBytes: sum(sent), rxPackets: 40, rxBytes: sum(sent) });
  t.equal(fn.registers!.read32(NIC.STATUS), NIC.STATUS_RUNNING | NIC.STATUS_LINK);
  t.equal(driver.receivedQueued, 0, 'nothing more arrived');
  t.equal(damagedGuards(platform, driver), 0, 'the bytes around every receive buffer are untouched');
  t.ok(fn.interruptsDelivered > 0, 'completions and arrivals came by MSI');
  await driver.stop();
});

t.test('without loopback or a peer, packets leave into nothing', async (t) => {
  const platform = await platformFor(t, { workers: 2 });
  const fn = addNic(platform, 6);
  const driver = await new NicDriver(platform, fn).start();
  const sent = packets(rng(12), 3, 60, 200);
  t.same(await Promise.all(sent.map((p) => driver.send(p))), [DONE, DONE, DONE]);
  await platform.devicesIdle();
  t.same(driver.stats(), { ...quiet, txPackets: 3, txBytes: sum(sent) });
  t.equal(fn.registers!.read32(NIC.STATUS), NIC.STATUS_RUNNING, 'no LINK');
  t.equal(driver.receivedQueued, 0);
  await driver.stop();
  // The same packets through a loopback NIC whose driver hands them to a callback.
  const heard: Uint8Array[] = [];
  const looped = await new NicDriver(platform, addNic(platform, 9), { loopback: true, onPacket: (p) => heard.push(p) }).start();
  t.same(await Promise.all(sent.map((p) => looped.send(p))), [DONE, DONE, DONE]);
  await platform.devicesIdle();
  t.same(heard, sent, 'onPacket got every packet in order');
  t.equal(looped.receivedQueued, 0, 'and nothing was queued for receive()');
  await looped.stop();
});

t.test('a wired pair carries traffic both ways at once', async (t) => {
  const { platform, a, b } = await wiredPair(t);
  t.equal(platform.bus.peerOf(a.fn), b.fn);
  const random = rng(21);
  const toB = packets(random, 60, 1, 2048);
  const toA = packets(random, 60, 1, 2048);
  const [sentAB, sentBA, gotB, gotA] = await Promise.all([
    Promise.all(toB.map((p) => a.send(p))),
    Promise.all(toA.map((p) => b.send(p))),
    receiveAll(b, toB.length),
    receiveAll(a, toA.length),
  ]);
  t.same(
    sentAB,
    toB.map(() => DONE),
  );
  t.same(
    sentBA,
    toA.map(() => DONE),
  );
  t.same(gotB, toB, 'B received what A sent, in order');
  t.same(gotA, toA, 'A received what B sent, in order (not its own)');
  await platform.devicesIdle();
  t.same(a.stats(), { ...quiet, txPackets: 60, txBytes: sum(toB), rxPackets: 60, rxBytes: sum(toA) });
  t.same(b.stats(), { ...quiet, txPackets: 60, txBytes: sum(toA), rxPackets: 60, rxBytes: sum(toB) });
  t.same([a.receivedQueued, b.receivedQueued], [0, 0]);
  t.same([damagedGuards(platform, a), damagedGuards(platform, b)], [0, 0], 'canaries intact');
  t.same([a.faults.length, b.faults.length], [0, 0], 'no DMA faulted');
  await a.stop();
  await b.stop();
});

t.test('both rings wrap around many times', async (t) => {
  // 200 packets of at most 1000 bytes fit the 256 KiB wire queue even if B fell behind: no drops by design.
  const { platform, a, b } = await wiredPair(t, { txEntries: 8 }, { rxEntries: 8 });
  const random = rng(31);
  const sent = packets(random, 200, 1, 1000);
  const fragments = sent.map((p) => Math.min(p.length, 1 + Math.floor(random() * 3)));
  const [statuses, got] = await Promise.all([Promise.all(sent.map((p, i) => a.send(p, { fragments: fragments[i] }))), receiveAll(b, sent.length)]);
  t.same(
    statuses,
    sent.map(() => DONE),
  );
  t.same(got, sent, '200 packets through an 8-entry TX ring and 7 receive buffers, in order');
  await platform.devicesIdle();
  const descriptors = fragments.reduce((n, f) => n + f, 0);
  t.equal(a.fn.registers!.read32(NIC.TX_HEAD), descriptors % 8, 'TX head went round the ring');
  t.equal(b.fn.registers!.read32(NIC.RX_HEAD), 200 % 8, 'RX head went round the ring');
  t.equal(b.rxDescriptors, 200);
  t.same(b.stats(), { ...quiet, rxPackets: 200, rxBytes: sum(sent) });
  t.same(a.stats(), { ...quiet, txPackets: 200, txBytes: sum(sent) });
  t.equal(damagedGuards(platform, b), 0);
  await a.stop();
  await b.stop();
});

t.test('scatter-gather: packets split over TX descriptors and spanning RX buffers', async (t) => {
  const { platform, a, b } = await wiredPair(t, { txEntries: 32 }, { rxEntries: 32, rxBufferBytes: 1500 }, [undefined, 1 << 20]);
  const random = rng(41);
  const sent = packets(random, 30, 1, 9000);
  sent.push(randomBytes(random, NIC.MAX_PACKET_BYTES));
  const fragments = sent.map((p) => fragmentsFor(random, p.length, a.txBufferBytes));
  t.ok(
    fragments.some((f) => f.includes(0)),
    'some packets carry an empty fragment',
  );
  const [statuses, got] = await Promise.all([Promise.all(sent.map((p, i) => a.send(p, { fragments: fragments[i] }))), receiveAll(b, sent.length)]);
  t.same(
    statuses,
    sent.map(() => DONE),
  );
  t.same(got, sent, 'reassembled byte-exact, in order');
  await platform.devicesIdle();
  const txDescriptors = fragments.reduce((n, f) => n + f.length, 0);
  const rxDescriptors = sent.reduce((n, p) => n + Math.ceil(p.length / 1500), 0);
  t.ok(rxDescriptors > sent.length + 60, `packets spanned ${rxDescriptors} receive buffers`);
  t.equal(a.fn.registers!.read32(NIC.TX_HEAD), txDescriptors % 32);
  t.equal(b.rxDescriptors, rxDescriptors, 'each packet took exactly the buffers it needs');
  t.equal(b.fn.registers!.read32(NIC.RX_HEAD), rxDescriptors % 32);
  t.same(b.stats(), { ...quiet, rxPackets: sent.length, rxBytes: sum(sent) });
  t.equal(damagedGuards(platform, b), 0);
  // One byte over the limit: the device refuses the whole packet, over every descriptor.
  const tooLong = randomBytes(random, NIC.MAX_PACKET_BYTES + 1);
  const after = randomBytes(random, 100);
  t.same(await Promise.all([a.send(tooLong), a.send(after)]), [nicErrorStatus(NIC.ERROR_BAD_LENGTH), DONE]);
  t.same(await b.receive(), after, 'the next packet went through');
  await platform.devicesIdle();
  t.equal(a.stats().txErrors, 1);
  t.equal(b.receivedQueued, 0);
  await a.stop();
  await b.stop();
});

t.test('RX starvation: the wire queue holds what fits, counts drops, and delivers once buffers come', async (t) => {
  const wireBytes = 16384;
  const { platform, a, b } = await wiredPair(t, {}, { postRxBuffers: 0 }, [undefined, wireBytes]);
  const random = rng(51);
  const sent = packets(random, 30, 1000, 1000);
  const fits = Math.floor(wireBytes / wireRecordBytes(1000));
  t.equal(fits, 16);
  t.same(
    await Promise.all(sent.map((p) => a.send(p))),
    sent.map(() => DONE),
    'the sender cannot tell',
  );
  await platform.devicesIdle();
  t.same(b.stats(), { ...quiet, rxDropped: 30 - fits }, 'drops counted at the receiver; nothing delivered');
  t.equal(b.fn.registers!.read32(NIC.RX_HEAD), 0);
  t.equal(b.receivedQueued, 0);
  t.equal(b.postRxBuffers(), 63);
  t.same(await receiveAll(b, fits), sent.slice(0, fits), 'the queued packets arrive intact and in order');
  const later = packets(random, 5, 1, 3000);
  t.same(
    await Promise.all(later.map((p) => a.send(p))),
    later.map(() => DONE),
  );
  t.same(await receiveAll(b, later.length), later, 'delivery resumed');
  await platform.devicesIdle();
  t.same(b.stats(), { ...quiet, rxPackets: fits + 5, rxBytes: 1000 * fits + sum(later), rxDropped: 30 - fits });
  t.equal(b.receivedQueued, 0, 'no dropped packet came back');
  t.equal(damagedGuards(platform, b), 0);
  await a.stop();
  await b.stop();
});

t.test('a TX buffer fault in the middle of a batch fails that packet only', async (t) => {
  const { platform, a, b } = await wiredPair(t);
  const random = rng(61);
  const mappings = a.mappedBuffers;
  const revoked = a.revokeTxBuffer(1);
  const sent = packets(random, 3, 100, 1500);
  t.same(await Promise.all(sent.map((p) => a.send(p))), [DONE, TX_FAULT, DONE]);
  t.same(await receiveAll(b, 2), [sent[0], sent[2]], 'the neighbours went through');
  await platform.devicesIdle();
  t.same(a.stats(), { ...quiet, txPackets: 2, txBytes: sent[0]!.length + sent[2]!.length, txErrors: 1 });
  t.equal(a.faults.length, 1, 'the IOMMU reported the fault to the driver');
  t.equal(a.faults[0]!.Arm64!.FaultAddress, revoked.iova + NicDriver.BUFFER_OFFSET);
  t.equal(a.faults[0]!.Arm64!.Flags.WriteNotRead, false);
  // The middle fragment of a three-fragment packet: every descriptor of it fails.
  a.revokeTxBuffer(1);
  const split = randomBytes(random, 3000);
  const next = randomBytes(random, 64);
  t.same(await Promise.all([a.send(split, { fragments: 3 }), a.send(next)]), [TX_FAULT, DONE]);
  t.same(await b.receive(), next);
  t.equal(a.mappedBuffers, mappings, 'the driver mapped the revoked buffers again');
  const more = packets(random, 80, 1, 500);
  t.same(
    await Promise.all(more.map((p) => a.send(p))),
    more.map(() => DONE),
    'the ring wraps over the repaired entries',
  );
  t.same(await receiveAll(b, more.length), more);
  await platform.devicesIdle();
  t.same([a.stats().txErrors, b.stats().rxPackets, b.receivedQueued, a.faults.length], [2, 83, 0, 2]);
  await a.stop();
  await b.stop();
});

t.test('an RX buffer fault drops that packet only', async (t) => {
  const { platform, a, b } = await wiredPair(t);
  const random = rng(71);
  const revoked = b.revokeRxBuffer(1);
  const sent = packets(random, 3, 100, 2048);
  t.same(await Promise.all(sent.map((p) => a.send(p))), [DONE, DONE, DONE]);
  t.same(await receiveAll(b, 2), [sent[0], sent[2]]);
  await platform.devicesIdle();
  t.same(b.stats(), { ...quiet, rxPackets: 2, rxBytes: sent[0]!.length + sent[2]!.length, rxErrors: 1 });
  t.equal(b.rxFailed, 1);
  t.equal(b.lastRxError, RX_FAULT, 'the descriptor says ERROR | EOP with the fault type');
  t.equal(b.faults.length, 1);
  t.equal(b.faults[0]!.Arm64!.FaultAddress, revoked.iova + NicDriver.BUFFER_OFFSET);
  t.equal(b.faults[0]!.Arm64!.Flags.WriteNotRead, true);
  // The second buffer of a two-buffer packet: the packet is dropped, the next one starts fresh.
  b.revokeRxBuffer(1);
  const spanning = randomBytes(random, 3000);
  const next = randomBytes(random, 500);
  t.same(await Promise.all([a.send(spanning), a.send(next)]), [DONE, DONE]);
  t.same(await b.receive(), next);
  await platform.devicesIdle();
  t.same(b.stats(), { ...quiet, rxPackets: 3, rxBytes: sent[0]!.length + sent[2]!.length + 500, rxErrors: 2 });
  t.equal(b.rxDescriptors, 3 + 2 + 1, 'the dropped packet used two buffers');
  const more = packets(random, 80, 1, 3000);
  t.same(
    await Promise.all(more.map((p) => a.send(p))),
    more.map(() => DONE),
  );
  t.same(await receiveAll(b, more.length), more, 'every later packet arrives');
  await platform.devicesIdle();
  t.same([b.stats().rxErrors, b.receivedQueued, damagedGuards(platform, b)], [2, 0, 0]);
  await a.stop();
  await b.stop();
});

t.test('an unreachable descriptor ring halts that direction only', async (t) => {
  const { platform, a, b } = await wiredPair(t);
  const unmapped = 0x7000_0000;
  const [ra, rb] = [a.fn.registers!, b.fn.registers!];
  rb.write32(NIC.CTRL, 0);
  await platform.devicesIdle();
  rb.write64(NIC.RX_RING_BASE, unmapped);
  rb.write32(NIC.CTRL, NIC.CTRL_ENABLE);
  const before = b.fn.interruptsDelivered;
  t.equal(await a.send(randomBytes(rng(81), 100)), DONE);
  await platform.devicesIdle();
  t.same(b.halted, { tx: false, rx: true, txFault: 0, rxFault: TranslationFault }, 'B stopped receiving');
  t.ok(b.fn.interruptsDelivered > before, 'the halt raised the RX vector');
  t.equal(b.faults[0]!.Arm64!.FaultAddress, unmapped);
  ra.write32(NIC.CTRL, 0);
  await platform.devicesIdle();
  ra.write64(NIC.TX_RING_BASE, unmapped);
  ra.write32(NIC.CTRL, NIC.CTRL_ENABLE);
  ra.write32(NIC.TX_TAIL, 1);
  await platform.devicesIdle();
  t.same(a.halted, { tx: true, rx: false, txFault: TranslationFault, rxFault: 0 }, 'A stopped sending');
  const packet = randomBytes(rng(82), 700);
  t.equal(await b.send(packet), DONE, "B's TX still works");
  t.same(await a.receive(), packet, "A's RX still works");
  await a.stop();
  await b.stop();
  t.same([platform.describeDomain(a.domain), platform.describeDomain(b.domain)], [undefined, undefined]);
});

t.test('stop() leaves no domain, mapping, token, device or page behind', async (t) => {
  const platform = await platformFor(t, { workers: 2 });
  const fnA = addNic(platform, 7);
  const fnB = addNic(platform, 8);
  platform.bus.connect(fnA, fnB);
  const free = platform.memory.freePageCount;
  const tables = platform.pageTablesInUse;
  const random = rng(91);
  for (let round = 0; round < 2; round++) {
    const a = await new NicDriver(platform, fnA, { txEntries: 16, rxEntries: 16 }).start();
    const b = await new NicDriver(platform, fnB).start();
    t.same(a.stats(), quiet, `round ${round}: the counters start at zero`);
    const toB = packets(random, 20, 1, 5000);
    const toA = packets(random, 20, 1, 5000);
    await Promise.all([...toB.map((p) => a.send(p)), ...toA.map((p) => b.send(p))]);
    t.same(await receiveAll(b, 20), toB, `round ${round}: A to B`);
    t.same(await receiveAll(a, 20), toA, `round ${round}: B to A`);
    const waiting = t.rejects(b.receive(), /stopped/, 'a receive() still waiting fails');
    const domains = [a.domain, b.domain];
    await a.stop();
    await b.stop();
    await waiting;
    await t.rejects(a.send(toB[0]!), /not started/);
    t.same(
      domains.map((d) => platform.describeDomain(d)),
      [undefined, undefined],
      'both domains are gone',
    );
    t.same([a.mappedBuffers, b.mappedBuffers], [0, 0]);
    t.equal(platform.memory.freePageCount, free, 'every ring and buffer page went back to guest memory');
    t.equal(platform.pageTablesInUse, tables, 'every page table was retired');
    t.equal(fnA.registers!.read32(NIC.CTRL), 0, 'the device is disabled');
    t.equal(fnA.registers!.read32(NIC.STATUS), 0);
  }
});
