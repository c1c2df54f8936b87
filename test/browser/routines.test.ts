import t from 'tap';
import * as viommu from '../../machine/index.js';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  PermissionFault,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_RESOURCE_IN_USE,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  TranslationFault,
  V2_ROUTINE_NAMES,
} from '../../machine/index.js';
import { seededRandom } from '../../examples/traffic/device-stats.js';
import { browserRig, openProbe } from './harness.js';
import { type RoutineProbe, routineProbe } from './pages/routine-probe.js';

/**
 * The same routine calls and DMAs (pages/routine-probe.ts) in Node and in Chromium, through
 * the package's browser build and its Web Workers: every status, mapping, byte and fault
 * field must be what Node gives, and what the contract says.
 */
const rig = await browserRig(t, ['routines'], { plainServer: true });

t.test('routines, mappings, DMA through a Web Worker and a fault: in Chromium exactly as in Node', async (t) => {
  const { page, problems } = await openProbe(rig, 'routines');
  const inBrowser = (await page.evaluate(() => (globalThis as unknown as { probes: { routines(): Promise<unknown> } }).probes.routines())) as RoutineProbe;
  const inNode = await routineProbe(viommu);
  t.same(inBrowser, inNode, 'the page reports what Node reports, field by field');
  t.same(problems, [], 'no error in the page');

  t.match(inBrowser.interface, { status: STATUS_SUCCESS, size: 0xc0, version: 2, version3: STATUS_NOT_SUPPORTED });
  t.same(inBrowser.interface.routines, [...V2_ROUTINE_NAMES], 'the 22 routines');
  t.same(inBrowser.statuses, {
    CreateDevice: STATUS_SUCCESS,
    CreateDomainExBadType: STATUS_INVALID_PARAMETER_1,
    CreateDomainEx: STATUS_SUCCESS,
    CreateDomainExOther: STATUS_SUCCESS,
    AttachDeviceEx: STATUS_SUCCESS,
    availableDomainTypes: inNode.statuses.availableDomainTypes,
    SetDeviceFaultReportingEx: STATUS_SUCCESS,
    MapLogicalRangeExBadAccess: STATUS_INVALID_PARAMETER_2,
    MapLogicalRangeEx: STATUS_SUCCESS,
    DetachDeviceEx: STATUS_SUCCESS,
    AttachDeviceExOther: STATUS_SUCCESS,
    MapReadOnly: STATUS_SUCCESS,
    DetachDeviceExOther: STATUS_SUCCESS,
    AttachDeviceExBack: STATUS_SUCCESS,
    UnmapLogicalRange: STATUS_SUCCESS,
    UnmapLogicalRangeAgain: STATUS_INVALID_PARAMETER,
    DeleteDomainInUse: STATUS_RESOURCE_IN_USE,
    DetachDeviceExLast: STATUS_SUCCESS,
    DeleteDomain: STATUS_SUCCESS,
    DeleteDomainOther: STATUS_SUCCESS,
    DeleteDevice: STATUS_SUCCESS,
  });
  t.ok((inBrowser.statuses.availableDomainTypes! & (1 << DomainTypeTranslate)) !== 0, 'Translate is available');

  t.match(inBrowser.mapped, {
    pages: 3,
    ranges: [{ kind: 'logical', pages: 3 }],
    translation: { physicalAddress: 5, access: IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE },
  });
  const random = seededRandom(0xb10c);
  const written = Array.from({ length: 3 * 4096 }, () => Math.floor(random() * 256));
  t.same(inBrowser.dmaRead, { ok: true, length: 3 * 4096 - 200, matches: true, head: written.slice(100, 108) }, 'a worker read the bytes the CPU wrote');
  t.same(inBrowser.dmaWrite, { ok: true, landed: [0xca, 0xfe, 0xf0, 0x0d] }, 'a worker wrote across a page boundary');
  t.same(inBrowser.readOnlyWrite, { ok: false, faultType: PermissionFault });
  t.same(inBrowser.afterUnmap, {
    ok: false,
    faultType: TranslationFault,
    faultAddress: inBrowser.mapped.iova + 8,
    translation: { faultType: TranslationFault },
  });
  t.same(
    inBrowser.faults.map((fault) => ({ type: fault.type, address: fault.faultAddress, write: fault.write })),
    [
      { type: PermissionFault, address: inNode.faults[0]!.faultAddress, write: true },
      { type: TranslationFault, address: inBrowser.mapped.iova + 8, write: false },
    ],
    'the FaultHandler heard of both faults',
  );
  const last = inBrowser.faults[1]!;
  t.match(last, { addressValid: true, sameDomain: true, sameDevice: true, inputMappingId: 0x20, iommuBaseAddress: 0x2b400000 }, 'FAULT_INFORMATION fields');
  t.same(inBrowser.faultStats, { raised: 2, delivered: 2, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 });
  t.same(inBrowser.workers, { count: 2, distinctIds: 2 }, 'two Web Workers with worker slots of their own');
});

t.test('without cross-origin isolation createPlatform says so and names both headers', async (t) => {
  const { page } = await openProbe(rig, 'routines', rig.plainServer!);
  const result = await page.evaluate(() => (globalThis as unknown as { probes: { createPlatform(): Promise<unknown> } }).probes.createPlatform());
  t.same(result, {
    created: false,
    crossOriginIsolated: false,
    error:
      'Error: viommu needs SharedArrayBuffer, and this page has none: it is not cross-origin isolated. Serve the page over https (or from localhost) ' +
      'with the headers "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" (see docs/embedding.md)',
  });
  const isolated = await openProbe(rig, 'routines');
  t.same(await isolated.page.evaluate(() => (globalThis as unknown as { probes: { createPlatform(): Promise<unknown> } }).probes.createPlatform()), {
    created: true,
    crossOriginIsolated: true,
  });
});

t.test('a worker script that does not load fails every DMA with an error that names it, and nothing hangs', async (t) => {
  const { page } = await openProbe(rig, 'routines');
  const result = (await page.evaluate(() => (globalThis as unknown as { probes: { missingWorker(): Promise<unknown> } }).probes.missingWorker())) as {
    first: string;
    second: string;
    errors: string[];
    workers: number;
  };
  const url = `${rig.server.url}no-such-worker.js`;
  t.match(result.first, new RegExp(`^DMA worker [12] could not start: ${url.replace(/[.]/g, '\\.')} did not load as a module worker$`));
  t.equal(result.second, result.first, 'a later DMA fails at once, the same way');
  t.same(
    result.errors.sort(),
    [1, 2].map((id) => `DMA worker ${id} could not start: ${url} did not load as a module worker`),
    'each worker reported once',
  );
  t.equal(result.workers, 0, 'no worker slot taken');
});
