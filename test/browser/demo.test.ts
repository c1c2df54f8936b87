import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import t from 'tap';
import type { DeviceEvent, DomainFigures, FaultEvent } from '../../examples/web/page/demo-machine.js';
import { projectRoot } from '../../examples/web/page-bundle.js';
import { TranslationFault } from '../../machine/index.js';
import { browserRig, openProbe } from './harness.js';

/**
 * The web demo (examples/web/page/, `npm run demo:web`) in Chromium, used as a person would:
 * traffic on every device kind with every byte checked, a NIC's TX buffer revoked with the
 * button, the misbehaving device started and stopped with its button. The figures come from
 * the page's own viommuDemo.snapshot(); a screenshot is kept in .web/screenshots/.
 */
interface Snapshot {
  ready: boolean;
  error: string | null;
  workers: number;
  kinds: Record<string, { devices: number; transfers: number; bytes: number; mismatches: number; unexpectedFailures: number }>;
  laneErrors: number;
  revocations: number;
  nicTxFailed: Record<string, number>;
  nicDomains: Record<string, number>;
  faults: FaultEvent[];
  events: DeviceEvent[];
  domains: DomainFigures[];
  workerStats: Array<{ slot: number; threadId: number; busy: boolean; iotlbHits: number; iotlbMisses: number }>;
  faultStats: { raised: number; delivered: number; dropped: number; suppressed: number; pending: number };
  samples: number;
}

const snapshot = (page: Page) =>
  page.evaluate(() => (globalThis as unknown as { viommuDemo: { snapshot(): unknown } }).viommuDemo.snapshot()) as Promise<Snapshot>;

async function until(page: Page, what: string, condition: (s: Snapshot) => boolean): Promise<Snapshot> {
  for (let waited = 0; ; waited += 100) {
    const s = await snapshot(page);
    if (condition(s)) return s;
    if (waited > 30_000) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ ...s, faults: s.faults.length, events: s.events.slice(-5) })}`);
    await page.waitForTimeout(100);
  }
}

const rig = await browserRig(t, ['colours'], { demo: true, plainServer: true });

t.test('the web demo runs every device kind with 0 mismatches, and shows a revoked buffer and the misbehaving device fault', async (t) => {
  const { page, problems } = await rig.open(`${rig.server.url}demo/`);
  await page.waitForFunction(() => (globalThis as unknown as { viommuDemo?: { ready: boolean } }).viommuDemo?.ready === true, undefined, { timeout: 30_000 });

  // Traffic on every kind, a few samples into the charts.
  const running = await until(
    page,
    'traffic on every kind',
    (s) => s.samples >= 5 && ['copy-engine', 'nvme', 'nic'].every((kind) => (s.kinds[kind]?.transfers ?? 0) > 0),
  );
  t.equal(running.faults.length, 0, 'no fault while every device DMAs where its driver mapped');

  // Revoke a TX buffer of the NIC chosen in the list: its next packet faults, and the NIC fails it.
  const nic = await page.locator('#nic').inputValue();
  t.equal(nic, '03:00.0', 'the first NIC is chosen');
  await page.click('#revoke');
  const revoked = await until(page, 'the revoked packet to fail', (s) => s.nicTxFailed[nic] === 1 && s.faults.some((f) => f.bdf === nic));
  const revocation = revoked.events.find((e) => e.bdf === nic && e.text.startsWith('TX buffer at IOVA'));
  const [, iovaText, bytesText] = /TX buffer at IOVA 0x([0-9a-f]+) \((\d+) bytes\) unmapped/.exec(revocation?.text ?? '') ?? [];
  const iova = Number.parseInt(iovaText ?? 'NaN', 16);
  const nicFaults = revoked.faults.filter((f) => f.bdf === nic);
  t.equal(nicFaults.length, 1, 'one fault for the revoked buffer');
  t.match(nicFaults[0], {
    kind: 'nic',
    type: TranslationFault,
    typeName: 'TranslationFault',
    write: false,
    domainId: revoked.nicDomains[nic],
    inputMappingId: 0x300,
  });
  t.ok(nicFaults[0]!.address >= iova && nicFaults[0]!.address < iova + Number(bytesText), 'the fault is in the revoked buffer (the NIC reads its TX buffer)');
  t.ok(
    revoked.events.some((e) => e.bdf === nic && e.text === 'the NIC failed 1 packet: TX descriptor status DESC_ERROR (a DMA fault)'),
    'the device reported the failed packet',
  );

  // The misbehaving device: started, allowed a few attempts, stopped.
  await page.click('#rogue');
  t.equal(await page.locator('#rogue').textContent(), 'Stop the misbehaving device');
  const loose = await until(page, 'the misbehaving device faults', (s) => s.faults.filter((f) => f.bdf === '09:00.0').length >= 4);
  await page.click('#rogue');
  t.equal(await page.locator('#rogue').textContent(), 'Start the misbehaving device');
  const rogueDomain = loose.domains.find((d) => d.bdf === '09:00.0');
  t.match(rogueDomain, { kind: 'misbehaving', mappings: 0, mappedPages: 0 }, 'its domain maps nothing');
  const [, secretText] = /read 14 bytes at 0x([0-9a-f]+)/.exec(loose.events.find((e) => e.bdf === '09:00.0' && e.text.startsWith('read'))?.text ?? '') ?? [];
  const secret = Number.parseInt(secretText ?? 'NaN', 16);
  const rogueFaults = loose.faults.filter((f) => f.bdf === '09:00.0');
  for (const [i, fault] of rogueFaults.slice(0, 4).entries()) {
    const write = i % 2 === 1;
    t.same(
      fault,
      {
        at: fault.at,
        bdf: '09:00.0',
        kind: 'misbehaving',
        type: TranslationFault,
        typeName: 'TranslationFault',
        address: write ? 0x4000_0000 + ((i - 1) / 2) * 4096 : secret,
        write,
        inputMappingId: 0x900,
        domainId: rogueDomain!.domainId,
        iommuBaseAddress: 0x2b400000,
        flags: write ? 0x9 : 0x8,
      },
      `fault ${i}: FAULT_INFORMATION of the ${write ? 'scribble' : 'stray read'}`,
    );
  }
  const reports = loose.events.filter((e) => e.bdf === '09:00.0' && e.text.includes('refused by the IOMMU'));
  t.ok(reports.length >= 4, `the device reported each refused DMA (${reports.length})`);
  t.match(
    reports[0]?.text,
    new RegExp(`^read 14 bytes at 0x${secret.toString(16)}: refused by the IOMMU, the device reports TranslationFault at 0x${secret.toString(16)}$`),
  );

  // Meanwhile every byte of the traffic was right.
  const end = await until(page, 'more traffic', (s) => s.samples > loose.samples + 2);
  for (const kind of ['copy-engine', 'nvme', 'nic']) {
    const figures = end.kinds[kind]!;
    t.equal(figures.mismatches, 0, `${kind}: 0 mismatches in ${figures.transfers} transfers`);
    t.ok(figures.transfers > running.kinds[kind]!.transfers, `${kind}: traffic went on`);
    t.equal(figures.unexpectedFailures, kind === 'nic' ? 1 : 0, kind === 'nic' ? 'the one packet the revoked buffer failed' : 'no failed transfer');
  }
  t.equal(end.laneErrors, 0);
  t.equal(end.faultStats.raised, end.faultStats.delivered, 'every fault delivered');
  t.equal(end.faultStats.delivered, end.faults.length, 'and each one listed');
  t.equal(end.workerStats.length, end.workers);
  t.ok(
    end.workerStats.every((w) => w.iotlbHits + w.iotlbMisses > 0),
    'every worker published IOTLB figures',
  );

  // What a person sees: four uPlot charts, the fault table, the device log.
  t.equal(await page.locator('.uplot canvas').count(), 4, 'four charts');
  t.ok((await page.locator('#faults tbody tr').count()) >= 5, 'the fault table lists the faults');
  t.match(await page.locator('#faults tbody tr').first().textContent(), /09:00\.0TranslationFault0x[0-9a-f]+(read|write)0x900#\d+0x[89]0x2b400000/);
  t.equal(await page.locator('#status-mismatches').textContent(), '0');
  const folder = join(projectRoot(), '.web', 'screenshots');
  mkdirSync(folder, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  writeFileSync(join(folder, 'demo.png'), png);
  const { page: check } = await openProbe(rig, 'colours');
  const colours = (await check.evaluate(
    (base64) => (globalThis as unknown as { probes: { countColours(png: string): Promise<unknown> } }).probes.countColours(base64),
    png.toString('base64'),
  )) as { distinct: number; width: number; height: number };
  t.ok(colours.width >= 1200 && colours.height >= 900, `a full-page screenshot (${colours.width}x${colours.height})`);
  t.ok(colours.distinct > 500, `the screenshot is not blank: ${colours.distinct} distinct colours`);
  t.same(problems, [], 'no error in the page');
});

t.test('served without the isolation headers, the demo page says what is missing', async (t) => {
  const { page } = await rig.open(`${rig.plainServer!.url}demo/`);
  await page.waitForFunction(() => (globalThis as unknown as { viommuDemo?: { error: string | null } }).viommuDemo?.error != null, undefined, {
    timeout: 20_000,
  });
  t.equal(
    await page.locator('#problem').textContent(),
    'The demo cannot start: viommu needs SharedArrayBuffer, and this page has none: it is not cross-origin isolated. Serve the page over https (or from localhost) ' +
      'with the headers "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" (see docs/embedding.md)',
  );
  t.ok(await page.locator('#problem').isVisible(), 'in plain sight');
  t.ok(await page.locator('#rogue').isDisabled(), 'the controls stay off');
});
