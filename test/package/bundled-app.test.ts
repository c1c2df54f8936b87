import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import t from 'tap';

/**
 * An application that bundles viommu with esbuild, as the README shows: esbuild does not
 * follow `new URL('…', import.meta.url)`, so the app passes options.workerUrl and the build
 * copies dist/workers/dma-worker.js next to the bundle; piscina stays external (it starts its
 * threads from its own worker file). The bundle then runs worker DMAs, and the bytes read back
 * are checked. Without workerUrl the same bundle looks for the worker beside itself and fails.
 * Needs dist/, which `npm install` builds.
 */
const checkout = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

const app = `import { createPlatform, DomainTypeTranslate, IOMMU_ACCESS_READ, IOMMU_ACCESS_WRITE, MapPhysicalAddressTypePfn } from 'viommu';

const options = { workers: 2, memoryBytes: 8 * 1024 * 1024 };
if (process.argv[2] !== 'default-worker-url') options.workerUrl = new URL('./dma-worker.js', import.meta.url);
const platform = await createPlatform(options);
try {
  const pdo = platform.bus.addFunction({ bus: 0, device: 2, function: 0 });
  const table = {};
  platform.IoGetIommuInterfaceEx(2, 0, table);
  const { V2 } = table.value;
  const device = {}, domain = {}, iova = {};
  const statuses = [
    V2.CreateDevice(pdo, null, device),
    V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
    V2.AttachDeviceEx(domain.value, device.value),
  ];
  const pfns = platform.memory.allocatePages(3).slice(1);
  const message = new TextEncoder().encode('bundled by esbuild');
  platform.memory.write(pfns[1] * 4096 + 100, message);
  statuses.push(
    V2.MapLogicalRangeEx(domain.value, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: 2 } }, null, null, null, iova),
  );
  const read = await platform.dma(pdo, { address: iova.value + 4096 + 100, length: message.length });
  const written = await platform.dma(pdo, { address: iova.value + 8, write: [1, 2, 3] });
  console.log(JSON.stringify({
    statuses,
    read: read.ok ? new TextDecoder().decode(read.data) : read,
    written: written.ok,
    memory: Array.from(platform.memory.read(pfns[0] * 4096 + 8, 3)),
  }));
} finally {
  await platform.close();
}
`;

t.test('an app bundled with esbuild runs worker DMAs with options.workerUrl and the worker file copied beside it', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'viommu-bundled-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'bundled-app', private: true, type: 'module' }));
  mkdirSync(join(project, 'node_modules'));
  // viommu as a dependency, and the dependency the app keeps external.
  symlinkSync(checkout, join(project, 'node_modules', 'viommu'), 'dir');
  symlinkSync(join(checkout, 'node_modules', 'piscina'), join(project, 'node_modules', 'piscina'), 'dir');
  writeFileSync(join(project, 'app.js'), app);

  const result = await build({
    absWorkingDir: project,
    entryPoints: ['app.js'],
    outdir: 'out',
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['piscina'],
    logLevel: 'silent',
  });
  t.same(result.errors, [], 'esbuild bundles the app');
  copyFileSync(join(project, 'node_modules/viommu/dist/workers/dma-worker.js'), join(project, 'out/dma-worker.js'));
  t.notOk(existsSync(join(project, 'out/workers')), 'nothing else is shipped beside the bundle');

  // The bundle runs from its own folder; node_modules holds only piscina (viommu and msgpackr are in the bundle).
  rmSync(join(project, 'node_modules', 'viommu'));
  const env = { ...process.env, NODE_OPTIONS: '' };
  const { stdout } = await run(process.execPath, ['out/app.js'], { cwd: project, env, timeout: 60_000 });
  t.same(
    JSON.parse(stdout),
    { statuses: [0, 0, 0, 0], read: 'bundled by esbuild', written: true, memory: [1, 2, 3] },
    'the worker read and wrote guest memory',
  );

  const fallback = await run(process.execPath, ['out/app.js', 'default-worker-url'], { cwd: project, env, timeout: 60_000 }).then(
    () => null,
    (error: { stderr?: string }) => error.stderr ?? '',
  );
  t.not(fallback, null, 'without workerUrl the bundle fails');
  t.match(
    fallback ?? '',
    /ERR_MODULE_NOT_FOUND[\s\S]*out[\\/]workers[\\/]dma-worker\.js/,
    'looking for the worker beside the bundle, where esbuild did not put it (ERR_MODULE_NOT_FOUND)',
  );
});
