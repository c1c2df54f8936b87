import t from 'tap';
import { IOMMU_ACCESS_READ, TranslationFault } from '../../machine/index.js';
import { browserRig, openProbe } from './harness.js';

/**
 * A DMA Web Worker that dies harms nothing else, as a worker thread in Node does
 * (test/data-plane/worker-failure.test.ts): terminated from the page mid-task, or ended by an
 * uncaught error, its task fails, the fault it raised is delivered, its slot goes to its
 * successor, and the other devices keep working (pages/worker-death.ts).
 */
interface Stats {
  slot: number;
  threadId: number;
  busy: boolean;
  iotlbHits: number;
  iotlbMisses: number;
}

t.test('a Web Worker terminated mid-task, and one ended by an uncaught error, harm nothing else', async (t) => {
  const rig = await browserRig(t, ['worker-death', 'worker-tasks']);
  const { page, problems } = await openProbe(rig, 'worker-death');
  const report = (await page.evaluate(() => (globalThis as unknown as { probes: { workerDeath(): Promise<unknown> } }).probes.workerDeath())) as {
    before: Stats[];
    healthyBefore: boolean[];
    terminated: { threadId: number; slot: number };
    terminatedTask: string;
    afterTermination: Stats[];
    healthyAfterTermination: boolean[];
    thrower: { threadId: number; slot: number };
    afterUncaught: Stats[];
    healthyAfterUncaught: boolean[];
    faults: Array<{ type: number; address: number; bdf: string; sameDomain: boolean }>;
    faultStats: { raised: number; delivered: number; dropped: number; suppressed: number; pending: number };
    deviceErrors: string[];
    callbackErrors: string[];
    deviceBatches: { run: number; failed: number };
    translation: unknown;
    readerPhysical: number;
  };

  t.same(report.before.map((s) => s.slot).sort(), [0, 1], 'two workers in slots 0 and 1');
  t.same(report.before.map((s) => s.threadId).sort(), [1, 2], 'with ids 1 and 2 from the pool');
  t.equal(report.before.find((s) => s.slot === report.terminated.slot)?.threadId, report.terminated.threadId, 'the spinning worker');
  t.same(report.healthyBefore, [true, true, true], 'the bystanders work before');

  t.equal(report.terminatedTask, `DMA worker ${report.terminated.threadId} ended (terminated, or it closed itself)`, "the terminated worker's task failed");
  const survivor = report.before.find((s) => s.slot !== report.terminated.slot)!;
  t.same(
    report.afterTermination.map((s) => [s.slot, s.threadId]).sort((a, b) => a[0]! - b[0]!),
    [
      [report.terminated.slot, 3],
      [survivor.slot, survivor.threadId],
    ].sort((a, b) => a[0]! - b[0]!),
    'its successor (id 3) took its slot; the other worker is the same',
  );
  t.same(report.healthyAfterTermination, [true, true, true, true, true, true], 'the bystanders work after');
  t.same(report.faults, [{ type: TranslationFault, address: 0x7770_0000, bdf: '00:03.0', sameDomain: true }], 'the fault it raised before dying was delivered');

  t.ok(
    report.afterTermination.some((s) => s.threadId === report.thrower.threadId),
    'the uncaught error was in a live worker',
  );
  t.equal(report.callbackErrors.length, 1, 'the uncaught error was reported once');
  t.match(
    report.callbackErrors[0],
    new RegExp(`^DMA worker ${report.thrower.threadId} failed: Uncaught Error: uncaught in a DMA worker \\(http://localhost:\\d+/worker-tasks\\.js:\\d+\\)$`),
  );
  t.same(report.afterUncaught.map((s) => s.slot).sort(), [0, 1], 'still two workers');
  t.equal(report.afterUncaught.find((s) => s.slot === report.thrower.slot)?.threadId, 4, 'its successor (id 4) took its slot');
  t.same(report.healthyAfterUncaught, [true, true, true, true, true, true], 'the bystanders work after');

  t.same(report.deviceErrors, [], 'no device batch failed');
  t.ok(report.deviceBatches.run >= 15 && report.deviceBatches.failed === 0, `copy engine batches ran (${report.deviceBatches.run})`);
  t.same(report.faultStats, { raised: 1, delivered: 1, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 });
  t.match(report.translation, { physicalAddress: report.readerPhysical, access: IOMMU_ACCESS_READ }, 'IOMMU state untouched');
  t.same(problems, [], 'nothing else went wrong in the page');
});
