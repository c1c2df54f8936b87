import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * The package as a dependent project sees it: a separate folder whose package.json says
 * "viommu": "file:<checkout>" (npm links such dependencies), importing 'viommu' from plain
 * Node 20 with no loader, running a DMA through a mapping, and through a restored snapshot
 * of the platform (msgpackr resolved as a dependency). Needs dist/, which
 * `npm install` builds.
 */
const checkout = fileURLToPath(new URL('../../', import.meta.url));

t.test('a separate project imports viommu (and viommu/v86) from plain Node, DMAs through a mapping, and restores a snapshot', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'viommu-consumer-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', dependencies: { viommu: `file:${checkout}` } }));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(checkout, join(project, 'node_modules', 'viommu'), 'dir');
  writeFileSync(
    join(project, 'main.js'),
    `import { createPlatform, restorePlatform, DomainTypeTranslate, MapPhysicalAddressTypeMdl, IOMMU_ACCESS_READ, TranslationFault } from 'viommu';
import { createV86Platform, DeviceAssignment } from 'viommu/v86';
const platform = await createPlatform({ workers: 1, memoryBytes: 8 * 1024 * 1024 });
const pdo = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
const table = {};
platform.IoGetIommuInterfaceEx(2, 0, table);
const { V2 } = table.value;
const device = {}, domain = {}, iova = {};
const statuses = [
  V2.CreateDevice(pdo, null, device),
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
  V2.AttachDeviceEx(domain.value, device.value),
];
const pfns = platform.memory.allocatePages(3).slice(2);
platform.memory.write(pfns[0] * 4096, [1, 2, 3, 4]);
statuses.push(V2.MapLogicalRangeEx(domain.value, IOMMU_ACCESS_READ, { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } }, null, null, null, iova));
const read = await platform.dma(pdo, { address: iova.value, length: 4 });
const restored = await restorePlatform(platform.saveState(), { workers: 1 });
const readRestored = await restored.platform.dma(restored.platform.bus.find(0, 1, 0), { address: iova.value, length: 4 });
await restored.platform.close();
statuses.push(V2.UnmapLogicalRange(domain.value, iova.value, 1));
const after = await platform.dma(pdo, { address: iova.value, length: 4 });
// viommu/v86's hypervisor-style assignment (IOVA = GPA) on a platform from 'viommu'.
const assigned = platform.bus.addFunction({ bus: 0, device: 2, function: 0 });
new DeviceAssignment(platform, assigned, { ranges: [[0, 1024 * 1024]] });
const identity = await platform.dma(assigned, { address: pfns[0] * 4096, length: 4 });
await platform.close();
console.log(JSON.stringify({ statuses, data: Array.from(read.data), restored: Array.from(readRestored.data), faulted: after.faultType === TranslationFault, logicalIsNotPhysical: iova.value !== pfns[0] * 4096, v86: typeof createV86Platform, identity: Array.from(identity.data) }));
`,
  );
  const { stdout } = await promisify(execFile)(process.execPath, ['main.js'], { cwd: project, timeout: 60_000, env: { ...process.env, NODE_OPTIONS: '' } });
  t.same(JSON.parse(stdout), {
    statuses: [0, 0, 0, 0, 0],
    data: [1, 2, 3, 4],
    restored: [1, 2, 3, 4],
    faulted: true,
    logicalIsNotPhysical: true,
    v86: 'function',
    identity: [1, 2, 3, 4],
  });
});
