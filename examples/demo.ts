/**
 * `npm start`: the whole system on built-in defaults.
 *
 * Several devices of each kind run real, verified traffic on the worker pool, each behind its
 * own IOMMU domain and driven by a driver that uses only the DMA_IOMMU_INTERFACE_V2 table.
 * One misbehaving device then DMAs where its driver never mapped anything: the IOMMU stops it
 * and its driver's FaultHandler receives the decoded FAULT_INFORMATION. A summary follows.
 */
import {
  createPlatform,
  DomainTypeTranslate,
  STATUS_SUCCESS,
  type DMA_IOMMU_INTERFACE_EX,
  type FAULT_INFORMATION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Out,
} from 'viommu';
import { CopyTraffic } from './traffic/copy-traffic.js';
import { keepBusy, seededRandom, type TrafficOptions } from './traffic/device-stats.js';
import { bytes, describeFault, deviceTable, faultLine } from './traffic/summary.js';

const SECONDS = Number(process.env.VIOMMU_DEMO_SECONDS ?? 4);
const tty = process.stdout.isTTY;
const say = (line: string) => console.log(line);

const platform = await createPlatform({ memoryBytes: 256 * 1024 * 1024 });
say(`viommu demo: ${platform.options.workers} DMA workers, ${bytes(platform.memory.size)} of guest memory, arch ${platform.arch}`);

const options: TrafficOptions = { random: seededRandom(2026), minBytes: 512, maxBytes: 64 * 1024, churn: true, faultRate: 0, depth: 4 };
const traffic = [0, 1, 2].map((i) => new CopyTraffic(platform, platform.bus.addFunction({ bus: 1, device: i, function: 0, model: 'copy-engine' }), options).start());
say(`devices: ${traffic.map((t) => `${t.stats.bdf} ${t.stats.kind}`).join(', ')}`);

const started = performance.now();
const deadline = started + SECONDS * 1000;
const progress = setInterval(() => {
  if (!tty) return;
  const done = traffic.reduce((sum, t) => sum + t.stats.transfers, 0);
  process.stdout.write(`\r  running: ${((performance.now() - started) / 1000).toFixed(1)} s, ${done} transfers verified`);
}, 250);
await Promise.all(traffic.map((t) => keepBusy(options.depth, () => performance.now() > deadline, () => t.one())));
clearInterval(progress);
if (tty) process.stdout.write('\r\x1b[K');
const seconds = (performance.now() - started) / 1000;

// The misbehaving device: its driver maps one buffer, but the device DMAs elsewhere.
const rogue = platform.bus.addFunction({ bus: 2, device: 0, function: 0 });
const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
platform.IoGetIommuInterfaceEx(2, 0, table);
const V2 = table.value!.V2;
const device: Out<IOMMU_DMA_DEVICE> = {};
const domain: Out<IOMMU_DMA_DOMAIN> = {};
const caught: FAULT_INFORMATION[] = [];
const steps = [
  V2.CreateDevice(rogue, null, device),
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
  V2.AttachDeviceEx(domain.value, device.value),
  V2.SetDeviceFaultReportingEx(device.value, rogue.inputMappingId, true, { FaultHandler: (_: unknown, info: FAULT_INFORMATION) => caught.push(info) }),
];
if (steps.some((status) => status !== STATUS_SUCCESS)) throw new Error('setting up the misbehaving device failed');
const secret = platform.memory.allocatePages(1)[0]! * 4096;
platform.memory.write(secret, new TextEncoder().encode('kernel secrets'));
const stray = await platform.dma(rogue, { address: secret, length: 14 }); // a physical address, not an IOVA it was given
const scribble = await platform.dma(rogue, { address: 0x4000_0000, write: [0xde, 0xad] });

say('');
say(`traffic: ${seconds.toFixed(1)} s`);
say(deviceTable(traffic.map((t) => t.stats), seconds));
const total = traffic.reduce((sum, t) => sum + t.stats.bytes, 0);
say(`total: ${traffic.reduce((sum, t) => sum + t.stats.transfers, 0)} transfers, ${bytes(total)}, ${bytes(total / seconds)}/s, ${traffic.reduce((sum, t) => sum + t.stats.mismatches, 0)} mismatches`);
say('');
say('domains:');
for (const t of traffic) {
  const summary = platform.describeDomain(t.driver.domain)!;
  say(`  ${t.stats.bdf}: ${summary.ranges.length} ranges (${summary.ranges.map((r) => `${r.kind} ${r.pages}p`).join(', ')}), ${summary.pageTables} page tables, ${summary.walks} walks, ${t.stats.mappings} buffer maps/unmaps`);
}
say('');
say(`misbehaving device ${rogue.bdf}: ${stray.ok ? 'READ GUEST MEMORY (bug!)' : 'stopped'}, ${scribble.ok ? 'WROTE GUEST MEMORY (bug!)' : 'stopped'}`);
for (const info of caught) say(`  FaultHandler: ${describeFault(info)}`);
say(faultLine(platform.faultStats()));

await Promise.all(traffic.map((t) => t.stop()));
await platform.close();
const failed = traffic.some((t) => t.stats.mismatches > 0 || t.stats.unexpectedFailures > 0) || stray.ok || scribble.ok || caught.length !== 2;
process.exitCode = failed ? 1 : 0;
