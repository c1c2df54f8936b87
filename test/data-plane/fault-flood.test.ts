import t, { type Test } from 'tap';
import { STATUS_SUCCESS, TranslationFault, type FAULT_INFORMATION } from '../../machine/index.js';
import { FAULT_BURST, FAULT_DELIVERIES_PER_SECOND } from '../../iommu/control/fault-dispatcher.js';
import { deviceInTranslateDomain, platformFor, v2Of } from '../helpers/fixture.js';

const flood = new URL('../fixtures/fault-flood.ts', import.meta.url);

/** A flooding device and a quiet one on one worker (one ring), both reporting. */
async function rig(t: Test, capacity: number) {
  const platform = await platformFor(t, { workers: 1, faultRingCapacity: capacity });
  const V2 = v2Of(platform);
  const flooder = deviceInTranslateDomain(platform, V2, { device: 1 });
  const other = deviceInTranslateDomain(platform, V2, { device: 2 });
  const seen = { flooder: [] as number[], other: [] as number[] };
  for (const [name, d] of [
    ['flooder', flooder],
    ['other', other],
  ] as const) {
    t.equal(
      V2.SetDeviceFaultReportingEx(d.device, d.fn.inputMappingId, true, {
        FaultHandler: (_: unknown, info: FAULT_INFORMATION) => {
          if (info.Arm64!.Type === TranslationFault) seen[name].push(info.Arm64!.FaultAddress);
        },
      }),
      STATUS_SUCCESS,
    );
  }
  return { platform, flooder, other, seen };
}

t.test('a device flooding its ring with distinct faults cannot make another device lose one', async (t) => {
  // Ring of 64: the flooder may have 16 waiting; its 20,000 faults overflow that share over and
  // over, yet each of the quiet device's 12 faults finds room, drained or not in between.
  const { platform, flooder, other, seen } = await rig(t, 64);
  const raised = await platform.runInWorker<{ flooder: number; other: number }>(flood, 'interleavedFaults', {
    flooder: flooder.fn.slot,
    other: other.fn.slot,
    floodAddress: 0x4000_0000,
    otherAddress: 0x8000_0000,
    perOther: 2000,
    others: 12,
    repeat: false,
  });
  t.same(raised, { flooder: 24_000, other: 12 });
  const stats = platform.faultStats();
  t.same(
    seen.other,
    Array.from({ length: 12 }, (_, i) => 0x8000_0000 + i * 4096),
    'every fault of the quiet device reached its handler, in order',
  );
  t.ok(stats.dropped > 0, `the flooder lost ${stats.dropped} faults to its share`);
  t.equal(stats.raised, 24_012);
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending, 'raised = delivered + dropped + suppressed + pending');
  t.equal(stats.delivered, seen.flooder.length + seen.other.length);
  t.equal(stats.pending, 0);
});

t.test('repeated identical faults collapse into the one waiting, and are counted as suppressed', async (t) => {
  const { platform, flooder, other, seen } = await rig(t, 64);
  const raised = await platform.runInWorker<{ flooder: number; other: number }>(flood, 'interleavedFaults', {
    flooder: flooder.fn.slot,
    other: other.fn.slot,
    floodAddress: 0x4000_0000,
    otherAddress: 0x8000_0000,
    perOther: 1000,
    others: 10,
    repeat: true,
  });
  t.same(raised, { flooder: 10_000, other: 10 });
  const stats = platform.faultStats();
  t.equal(seen.other.length, 10, 'the quiet device lost nothing');
  t.ok(seen.flooder.length >= 10, `the flooder's fault was delivered (${seen.flooder.length} times: once per drain at least)`);
  t.ok(
    seen.flooder.every((address) => address === 0x4000_0000),
    'always the same fault',
  );
  t.equal(stats.dropped, 0, 'collapsing leaves no reason to drop');
  t.equal(stats.suppressed, 10_000 - seen.flooder.length, 'each repeat not delivered was collapsed and counted');
  t.equal(stats.collapsed, stats.suppressed, 'as collapsed (reporting was on)');
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
});

t.test('a ring of two still gives each device one waiting record', async (t) => {
  const { platform, flooder, other, seen } = await rig(t, 2);
  await platform.runInWorker(flood, 'interleavedFaults', {
    flooder: flooder.fn.slot,
    other: other.fn.slot,
    floodAddress: 0x4000_0000,
    otherAddress: 0x8000_0000,
    perOther: 50,
    others: 1,
    repeat: false,
  });
  t.same(seen.other, [0x8000_0000]);
  const stats = platform.faultStats();
  t.equal(stats.raised, 51);
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
});

t.test('a device past its delivery rate has its faults counted as dropped, and is heard again once its budget refills', async (t) => {
  // A big ring, so that only the rate limit (a burst of FAULT_BURST) can hold deliveries back.
  const { platform, flooder, other, seen } = await rig(t, 1 << 16);
  await platform.runInWorker(flood, 'interleavedFaults', {
    flooder: flooder.fn.slot,
    other: other.fn.slot,
    floodAddress: 0x4000_0000,
    otherAddress: 0x8000_0000,
    perOther: 3 * FAULT_BURST,
    others: 4,
    repeat: false,
  });
  let stats = platform.faultStats();
  t.equal(stats.raised, 4 * 3 * FAULT_BURST + 4);
  t.ok(stats.dropped > 0, `${stats.dropped} of the flooder's faults past its rate were dropped`);
  t.ok(seen.flooder.length < 4 * 3 * FAULT_BURST);
  t.equal(seen.other.length, 4, 'the quiet device was not held back');
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
  // Long enough for the budget to refill (FAULT_DELIVERIES_PER_SECOND) many times over.
  await new Promise((resolve) => setTimeout(resolve, Math.ceil((5 * 1000 * FAULT_BURST) / FAULT_DELIVERIES_PER_SECOND)));
  const before = seen.flooder.length;
  await platform.dma(flooder.fn, { address: 0x7000_0000, length: 4 });
  stats = platform.faultStats();
  t.equal(seen.flooder.length, before + 1, 'its next fault is delivered');
  t.equal(seen.flooder.at(-1), 0x7000_0000);
  t.equal(stats.raised, stats.delivered + stats.dropped + stats.suppressed + stats.pending);
});
