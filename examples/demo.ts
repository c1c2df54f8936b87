/**
 * `npm start`: the whole system on built-in defaults.
 *
 * Two devices of each kind (copy engines, NVMe-like controllers, a pair of wired NICs) run
 * real, verified traffic on the worker pool, each behind its own IOMMU domain and driven by a
 * driver that uses only the DMA_IOMMU_INTERFACE_V2 table. One misbehaving device then DMAs
 * where its driver never mapped anything: the IOMMU stops it and its driver's FaultHandler
 * receives the decoded FAULT_INFORMATION. A summary follows.
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
import { deviceStatsOf, startTraffic } from './stress/runner.js';
import { keepBusy } from './traffic/device-stats.js';
import { bytes, describeFault, describeRanges, deviceTable, faultLine } from './traffic/summary.js';

const SECONDS = Number(process.env.VIOMMU_DEMO_SECONDS ?? 5);
const tty = process.stdout.isTTY;
const say = (line: string) => console.log(line);

const platform = await createPlatform({ memoryBytes: 256 * 1024 * 1024 });
say(`viommu demo: ${platform.options.workers} DMA workers, ${bytes(platform.memory.size)} of guest memory, arch ${platform.arch}`);

const options = {
  workers: platform.options.workers,
  devicesPerKind: 2,
  kinds: ['copy-engine', 'nvme', 'nic'] as const,
  seconds: SECONDS,
  minBytes: 512,
  maxBytes: 64 * 1024,
  churn: true,
  faultRate: 0,
  depth: 4,
  seed: 2026,
  json: null,
  quiet: true,
};
const traffic = await startTraffic(platform, { ...options, kinds: [...options.kinds] });
say(
  `devices: ${deviceStatsOf(traffic)
    .map((d) => `${d.bdf} ${d.kind}`)
    .join(', ')}`,
);

const started = performance.now();
const deadline = started + SECONDS * 1000;
const progress = setInterval(() => {
  if (!tty) return;
  const done = deviceStatsOf(traffic).reduce((sum, d) => sum + d.transfers, 0);
  process.stdout.write(`\r  running: ${((performance.now() - started) / 1000).toFixed(1)} s, ${done} transfers verified`);
}, 250);
await Promise.all(
  traffic.map((t) =>
    keepBusy(
      options.depth,
      () => performance.now() > deadline,
      () => t.one(),
    ),
  ),
);
clearInterval(progress);
if (tty) process.stdout.write('\r\x1b[K');
const seconds = (performance.now() - started) / 1000;

// The misbehaving device: attached to a domain where nothing is mapped for it, it reads a
// physical address it happens to know and scribbles at a made-up IOVA.
const rogue = platform.bus.addFunction({ bus: 9, device: 0, function: 0 });
const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
platform.IoGetIommuInterfaceEx(2, 0, table);
const V2 = table.value!.V2;
const device: Out<IOMMU_DMA_DEVICE> = {};
const domain: Out<IOMMU_DMA_DOMAIN> = {};
const caught: FAULT_INFORMATION[] = [];
const steps = [
  V2.CreateDevice(rogue, null, device),
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
  V2.AttachDeviceEx(domain.value!, device.value!),
  V2.SetDeviceFaultReportingEx(device.value!, rogue.inputMappingId, true, { FaultHandler: (_, info) => caught.push(info) }),
];
if (steps.some((status) => status !== STATUS_SUCCESS)) throw new Error('setting up the misbehaving device failed');
const secret = platform.memory.allocatePages(1)[0]! * 4096;
platform.memory.write(secret, new TextEncoder().encode('kernel secrets'));
const stray = await platform.dma(rogue, { address: secret, length: 14 });
const scribble = await platform.dma(rogue, { address: 0x4000_0000, write: [0xde, 0xad] });

const devices = deviceStatsOf(traffic);
say('');
say(`traffic: ${seconds.toFixed(1)} s`);
say(deviceTable(devices, seconds));
const total = devices.reduce((sum, d) => sum + d.bytes, 0);
const transfers = devices.reduce((sum, d) => sum + d.transfers, 0);
const mismatches = devices.reduce((sum, d) => sum + d.mismatches + d.unexpectedFailures, 0);
say(`total: ${transfers} transfers, ${bytes(total)}, ${bytes(total / seconds)}/s, ${mismatches} mismatches`);
say('');
say('domains:');
for (const driver of traffic.flatMap((t) => t.drivers)) {
  const summary = platform.describeDomain(driver.domain)!;
  say(`  ${driver.fn.bdf} ${driver.fn.model.padEnd(11)} ${describeRanges(summary.ranges)}; ${summary.pageTables} page tables, ${summary.walks} table walks`);
}
say('');
say(`misbehaving device ${rogue.bdf}: ${stray.ok ? 'READ GUEST MEMORY (bug!)' : 'stopped'}, ${scribble.ok ? 'WROTE GUEST MEMORY (bug!)' : 'stopped'}`);
for (const info of caught) say(`  FaultHandler: ${describeFault(info)}`);
say(faultLine(platform.faultStats()));

for (const t of traffic) await t.stop();
await platform.close();
process.exitCode = mismatches > 0 || stray.ok || scribble.ok || caught.length !== 2 ? 1 : 0;
