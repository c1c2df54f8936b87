import t from 'tap';
import { NVME, TranslationFault } from '../../machine/index.js';
import { browserRig, openProbe } from './harness.js';

/**
 * dataPlane 'main-thread' in Chromium, in a page served without the cross-origin isolation
 * headers: no SharedArrayBuffer exists there, and the platform works anyway (pages/main-thread.ts).
 * That is the page v86 runs in when its host does nothing special.
 */
t.test('in a page without cross-origin isolation the main-thread data plane works: NVMe I/O, a fault, an IOVA = GPA assignment', async (t) => {
  const rig = await browserRig(t, ['main-thread'], { plainServer: true });
  const { page, problems } = await openProbe(rig, 'main-thread', rig.plainServer!);
  const report = await page.evaluate(() => (globalThis as unknown as { probes: { mainThread(): Promise<unknown> } }).probes.mainThread());
  t.same(report, {
    crossOriginIsolated: false,
    sharedArrayBuffer: 'undefined',
    plainRam: true,
    statuses: [0, 0, NVME.SC_DATA_TRANSFER_ERROR],
    back: [7, 20, 33, 46, 59, 72],
    faults: [{ address: true, namesThePdo: true }],
    identity: [1, 2, 3, 4],
    outside: TranslationFault,
    assignmentFaults: 1,
    faultStats: { raised: 2, delivered: 2, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 },
  });
  t.same(problems, [], 'no error in the page');
});
