import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * The package as npm would deliver it: `npm pack` of the checkout (dist/ as `npm install`
 * built it), installed into a separate project that has no @types/node, no DOM library and
 * no optional dependencies (so none of the native add-ons msgpackr and piscina can use).
 * Its TypeScript (the repository's compiler) typechecks the type tests against the packed
 * declarations, with a deliberately wrong line that must fail; plain Node then runs a DMA and
 * a snapshot round trip from the installed tarball.
 */
const checkout = fileURLToPath(new URL('../../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// The child processes are plain Node and npm: no tsx loader from the test runner.
const env = { ...process.env, NODE_OPTIONS: '' };

/** Packs the checkout without running its scripts (dist/ is already built) and returns the tarball's path and file list. */
async function pack(into: string): Promise<{ tarball: string; files: string[] }> {
  const { stdout } = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', into], { cwd: checkout, env, timeout: 120_000 });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(into, info!.filename), files: info!.files.map((f) => f.path) };
}

t.test('the packed package: its files, its declarations without Node types, a consumer that typechecks and runs', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'viommu-packed-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const { tarball, files } = await pack(project);

  for (const file of [
    'LICENSE',
    'CHANGELOG.md',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/v86.js',
    'dist/v86.d.ts',
    'dist/workers/dma-worker.js',
    'dist/bin/viommu-stress.js',
  ]) {
    t.ok(files.includes(file), `the tarball holds ${file}`);
  }
  t.same(files.filter((f) => f.endsWith('.d.ts')).sort(), ['dist/index.d.ts', 'dist/v86.d.ts'], 'one declaration file per entry (viommu, viommu/v86)');
  t.same(
    files.filter((f) => f.endsWith('.d.ts.map') || f.startsWith('docs/api/') || f.startsWith('dist/types/')),
    [],
    'no declaration maps, no generated API site',
  );

  const declarations = readFileSync(join(checkout, 'dist/index.d.ts'), 'utf8');
  t.notMatch(declarations, /from ['"]node:|reference types=|NodeJS\.|import\(['"]node:/, 'the declarations name no Node module or Node type');
  t.notMatch(declarations, /\binternalsOf\b|setupIommu\(|readonly engine:/, '@internal members are left out');
  const v86Declarations = readFileSync(join(checkout, 'dist/v86.d.ts'), 'utf8');
  t.notMatch(v86Declarations, /from ['"]node:|reference types=|NodeJS\.|\bcpuOf\b/, 'viommu/v86: no Node type, no @internal member');
  t.match(v86Declarations, /^import type \{[^}]*\bPlatform\b[^}]*\} from 'viommu';$/m, "viommu/v86 names the package's own Platform");

  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'packed-consumer', private: true, type: 'module' }));
  await run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--omit=optional', '--ignore-scripts', tarball], {
    cwd: project,
    env,
    timeout: 180_000,
  });
  t.notOk(existsSync(join(project, 'node_modules/@types/node')), 'the consumer has no @types/node');
  t.notOk(existsSync(join(project, 'node_modules/msgpackr-extract')), 'nor the optional native add-on of msgpackr');
  t.notOk(existsSync(join(project, 'node_modules/@napi-rs/nice')), 'nor the optional native add-on of piscina');

  // The type tests, as a consumer's file, and a consumer file with one wrong line.
  copyFileSync(fileURLToPath(new URL('../types/v2-table.ts', import.meta.url)), join(project, 'types.ts'));
  const wrong = [
    "import { createPlatform, type IOMMU_DMA_DEVICE, type IOMMU_DMA_DOMAIN, type Out } from 'viommu';",
    'const platform = await createPlatform({ workers: 0 });',
    'const table: Parameters<typeof platform.IoGetIommuInterfaceEx>[2] = {};',
    'platform.IoGetIommuInterfaceEx(2, 0, table);',
    'const device: Out<IOMMU_DMA_DEVICE> = {};',
    'const domain: Out<IOMMU_DMA_DOMAIN> = {};',
    'table.value!.V2.AttachDeviceEx(device.value!, domain.value!);',
    '',
  ];
  writeFileSync(join(project, 'wrong.ts'), wrong.join('\n'));
  const compilerOptions = {
    target: 'ES2022',
    lib: ['ES2022'],
    types: [],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    noEmit: true,
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['types.ts', 'wrong.ts'] }));
  const compiled = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: project, env, timeout: 120_000 }).then(
    () => ({ ok: true, output: '' }),
    (error: { stdout?: string }) => ({ ok: false, output: error.stdout ?? '' }),
  );
  const errors = compiled.output.split('\n').filter((line) => line.includes('error TS'));
  t.notOk(compiled.ok, 'tsc fails: wrong.ts has a wrong line');
  t.equal(errors.length, 1, `exactly one error:\n${compiled.output}`);
  t.match(
    errors[0] ?? '',
    /^wrong\.ts\(7,\d+\): error TS2345: Argument of type 'IOMMU_DMA_DEVICE' is not assignable to parameter of type 'IOMMU_DMA_DOMAIN'/,
    'on the line that swaps the device and the domain',
  );

  // viommu/v86 with a platform from either entry: one Platform type.
  const v86 = [
    "import { createPlatform, type FAULT_INFORMATION, type Platform } from 'viommu';",
    "import { createV86Platform, DeviceAssignment, type V86Binding } from 'viommu/v86';",
    'export async function bind(emulator: object): Promise<number> {',
    '  const made: { platform: Platform; binding: V86Binding } = await createV86Platform(emulator, { arch: "arm64" });',
    '  const fn = made.platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: "nvme" });',
    '  made.binding.attach(fn, { mmioBase: 0xfe000000 });',
    '  const faults: FAULT_INFORMATION[] = [];',
    '  const assignment = new DeviceAssignment(made.platform, fn, { onFault: (fault) => faults.push(fault) });',
    '  const other = await createPlatform({ dataPlane: "main-thread" });',
    '  new DeviceAssignment(other, other.bus.addFunction({ bus: 0, device: 1, function: 0 }), { domain: "pass-through" });',
    '  return assignment.revoke([[0, 4096]]) + made.binding.stats.intxRaised;',
    '}',
    '',
  ];
  writeFileSync(join(project, 'v86.ts'), v86.join('\n'));
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['types.ts', 'v86.ts'] }));
  const clean = await run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: project, env, timeout: 120_000 }).then(
    () => '',
    (error: { stdout?: string }) => error.stdout ?? 'tsc failed',
  );
  t.equal(clean, '', 'the type tests typecheck against the packed declarations: correct use compiles, each misuse fails');

  // And the installed tarball runs, on plain Node, without the native add-ons.
  writeFileSync(
    join(project, 'main.js'),
    `import { createPlatform, restorePlatform, DomainTypeTranslate, MapPhysicalAddressTypeMdl, IOMMU_ACCESS_READ } from 'viommu';
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
const pfns = platform.memory.allocatePages(2).slice(1);
platform.memory.write(pfns[0] * 4096, [9, 8, 7, 6]);
statuses.push(V2.MapLogicalRangeEx(domain.value, IOMMU_ACCESS_READ, { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } }, null, null, null, iova));
const read = await platform.dma(pdo, { address: iova.value, length: 4 });
const restored = await restorePlatform(platform.saveState(), { workers: 1 });
const again = await restored.platform.dma(restored.platform.bus.find(0, 1, 0), { address: iova.value, length: 4 });
await restored.platform.close();
await platform.close();
console.log(JSON.stringify({ statuses, read: Array.from(read.data), restored: Array.from(again.data) }));
`,
  );
  const { stdout } = await run(process.execPath, ['main.js'], { cwd: project, env, timeout: 60_000 });
  t.same(JSON.parse(stdout), { statuses: [0, 0, 0, 0], read: [9, 8, 7, 6], restored: [9, 8, 7, 6] }, 'a DMA and a snapshot round trip from the tarball');
});

t.test('prepare in a clone without the build tools says so and builds nothing, without failing the install', async (t) => {
  // build.mjs alone in a folder: no node_modules anywhere above it, as after `npm install --omit=dev`.
  const clone = mkdtempSync(join(tmpdir(), 'viommu-no-dev-'));
  t.teardown(() => rmSync(clone, { recursive: true, force: true }));
  copyFileSync(join(checkout, 'build.mjs'), join(clone, 'build.mjs'));
  const prepared = await run(process.execPath, ['build.mjs', '--prepare'], { cwd: clone, env, timeout: 60_000 });
  t.match(prepared.stderr, /dist\/ not built: the build tools \(devDependencies\) are not installed\. Run `npm install`, then `npm run build`\./);
  t.notOk(existsSync(join(clone, 'dist')), 'no dist/');
  const built = await run(process.execPath, ['build.mjs'], { cwd: clone, env, timeout: 60_000 }).then(
    () => null,
    (error: { code?: number; stderr?: string }) => error,
  );
  t.not(built, null, '`npm run build` (no --prepare) fails without the tools');
  t.match(built?.stderr ?? '', /Cannot find package 'esbuild'/, 'naming the missing tool');
});
