import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

/**
 * The defaults on a machine that reports 128 CPUs (more than the 64 workers a platform may
 * run). Each case is a child process whose preload patches os.availableParallelism and
 * publishes it to ES module importers (syncBuiltinESMExports) before the package is imported,
 * then runs the built package (dist/, as a user of the package would) with default options:
 * createPlatform(), restorePlatform(saveState()) and the viommu-stress command.
 */
const checkout = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const env = { ...process.env, NODE_OPTIONS: '' };

function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'viommu-128-cpus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'cpus.mjs'),
    `import os from 'node:os';
import { syncBuiltinESMExports } from 'node:module';
os.availableParallelism = () => 128;
os.cpus = () => Array.from({ length: 128 }, () => ({ model: 'stub', speed: 1000, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }));
syncBuiltinESMExports();
`,
  );
  // A worker module for runInWorker: each task waits until `parties` tasks run at once (or 30 s pass).
  writeFileSync(
    join(dir, 'barrier.mjs'),
    `export function barrier(runtime, { counter, parties }) {
  const cells = new Int32Array(counter);
  if (Atomics.add(cells, 0, 1) + 1 === parties) Atomics.notify(cells, 0);
  const deadline = Date.now() + 30_000;
  for (let seen = Atomics.load(cells, 0); seen < parties && Date.now() < deadline; seen = Atomics.load(cells, 0)) {
    // Waits for the other tasks' arrivals (the last one notifies).
    Atomics.wait(cells, 0, seen, deadline - Date.now());
  }
  return { threadId: runtime.threadId, met: Atomics.load(cells, 0) >= parties };
}
`,
  );
  return dir;
}

t.test('createPlatform() on 128 CPUs starts 64 workers that all run at once, and a default restore works', async (t) => {
  const dir = scratch(t);
  writeFileSync(
    join(dir, 'main.mjs'),
    `import { availableParallelism } from 'node:os';
import { createPlatform, restorePlatform, DomainTypeTranslate, MapPhysicalAddressTypeMdl, IOMMU_ACCESS_READ } from 'viommu';
const platform = await createPlatform();
// 64 tasks that only finish once all 64 run at the same time: 64 live workers, or none finishes.
const counter = new SharedArrayBuffer(4);
const tasks = await Promise.all(Array.from({ length: 64 }, () => platform.runInWorker(new URL('./barrier.mjs', import.meta.url), 'barrier', { counter, parties: 64 })));
const pdo = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
const table = {};
platform.IoGetIommuInterfaceEx(2, 0, table);
const { V2 } = table.value;
const device = {}, domain = {}, iova = {};
const pfns = platform.memory.allocatePages(1);
platform.memory.write(pfns[0] * 4096, [5, 6, 7, 8]);
const statuses = [
  V2.CreateDevice(pdo, null, device),
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
  V2.AttachDeviceEx(domain.value, device.value),
  V2.MapLogicalRangeEx(domain.value, IOMMU_ACCESS_READ, { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } }, null, null, null, iova),
];
const restored = await restorePlatform(platform.saveState());
const read = await restored.platform.dma(restored.platform.bus.find(0, 1, 0), { address: iova.value, length: 4 });
console.log(JSON.stringify({
  cpus: availableParallelism(),
  workers: platform.options.workers,
  threads: new Set(tasks.map((task) => task.threadId)).size,
  allMet: tasks.every((task) => task.met),
  statuses,
  restoredWorkers: restored.platform.options.workers,
  restoredRead: Array.from(read.data),
}));
await restored.platform.close();
await platform.close();
`,
  );
  // 'viommu' is the checkout, as a dependency.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'many-cpus', private: true, type: 'module' }));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(checkout, join(dir, 'node_modules', 'viommu'), 'dir');
  const { stdout } = await run(process.execPath, ['--import', pathToFileURL(join(dir, 'cpus.mjs')).href, 'main.mjs'], { cwd: dir, env, timeout: 240_000 });
  t.same(JSON.parse(stdout), {
    cpus: 128,
    workers: 64,
    threads: 64,
    allMet: true,
    statuses: [0, 0, 0, 0],
    restoredWorkers: 64,
    restoredRead: [5, 6, 7, 8],
  });
});

t.test('viommu-stress with its default worker count on 128 CPUs runs 64 workers and verifies every byte', async (t) => {
  const dir = scratch(t);
  const figures = join(dir, 'figures.json');
  const { stdout } = await run(
    process.execPath,
    ['--import', pathToFileURL(join(dir, 'cpus.mjs')).href, 'dist/bin/viommu-stress.js', '--seconds=1', '--quiet', '--json', figures],
    { cwd: checkout, env, timeout: 240_000 },
  );
  t.match(stdout, /result: every byte verified, every injected fault accounted for/);
  const result = JSON.parse(readFileSync(figures, 'utf8'));
  t.equal(result.workers, 64, 'the default: 128 CPUs, at most 64 workers');
  t.equal(result.mismatches, 0);
  t.equal(result.unexpectedFailures, 0);
});
