import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

/**
 * Each rule of .dependency-cruiser.cjs, broken on purpose: a small tree laid out like the
 * package, checked with the project's own configuration, must fail naming the rule and the
 * file; the same tree without the offending import must pass.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const config = path.join(root, '.dependency-cruiser.cjs');
const depcruise = path.join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const run = promisify(execFile);

/** Writes `files` (path -> source) into a fresh folder and runs the dependency check there. */
async function cruise(t: Test, files: Record<string, string>): Promise<{ failed: boolean; output: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'viommu-deps-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'fixture', type: 'module', devDependencies: { 'a-dev-tool': '1.0.0' } }));
  for (const [file, source] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), source);
  }
  const folders = [...new Set(Object.keys(files).map((file) => file.split('/')[0]!))].filter((folder) => folder !== 'node_modules');
  try {
    const { stdout } = await run(process.execPath, [depcruise, '--config', config, ...folders], { cwd: dir });
    return { failed: false, output: stdout };
  } catch (error) {
    const { stdout, stderr } = error as { stdout: string; stderr: string };
    return { failed: true, output: `${stdout}${stderr}` };
  }
}

const uses = (target: string) => `import { value } from '${target}';\nexport const used = value;\n`;
const leaf = 'export const value = 1;\n';

const broken: Array<{ rule: string; file: string; files: Record<string, string> }> = [
  {
    rule: 'no-upward-from-iommu',
    file: 'iommu/translate.ts',
    files: { 'iommu/translate.ts': uses('../workers/pool.js'), 'workers/pool.ts': leaf },
  },
  {
    rule: 'no-upward-from-base',
    file: 'base/numbers.ts',
    files: { 'base/numbers.ts': uses('../hardware/guest-memory.js'), 'hardware/guest-memory.ts': leaf },
  },
  {
    rule: 'no-upward-from-devices',
    file: 'devices/models/nvme.ts',
    files: { 'devices/models/nvme.ts': uses('../../machine/platform.js'), 'machine/platform.ts': leaf },
  },
  {
    rule: 'no-upward-from-hardware',
    file: 'hardware/pci-bus.ts',
    files: { 'hardware/pci-bus.ts': uses('../iommu/control/device-contexts.js'), 'iommu/control/device-contexts.ts': leaf },
  },
  {
    rule: 'no-upward-from-workers',
    file: 'workers/pool.ts',
    files: { 'workers/pool.ts': uses('../machine/platform.js'), 'machine/platform.ts': leaf },
  },
  {
    rule: 'no-dev-dependency-in-the-package',
    file: 'iommu/control/core.ts',
    files: {
      'iommu/control/core.ts': uses('a-dev-tool'),
      'node_modules/a-dev-tool/package.json': JSON.stringify({ name: 'a-dev-tool', version: '1.0.0', type: 'module', main: 'index.js' }),
      'node_modules/a-dev-tool/index.js': leaf,
    },
  },
  {
    rule: 'iommu-imports-no-worker-model-or-driver',
    file: 'iommu/routines/map.ts',
    files: { 'iommu/routines/map.ts': uses('../../devices/drivers/nvme-driver.js'), 'devices/drivers/nvme-driver.ts': leaf },
  },
  {
    rule: 'iommu-sees-only-the-substrate-interface',
    file: 'iommu/control/core.ts',
    files: {
      'iommu/control/core.ts': uses('../../hardware/pci-bus.js'),
      'hardware/pci-bus.ts': uses('./substrate.js'),
      'hardware/substrate.ts': leaf,
    },
  },
  {
    rule: 'models-do-not-know-drivers',
    file: 'devices/models/nic.ts',
    files: { 'devices/models/nic.ts': uses('../drivers/nic-driver.js'), 'devices/drivers/nic-driver.ts': leaf },
  },
  {
    rule: 'no-package-entry-inside-the-package',
    file: 'devices/drivers/driver-base.ts',
    files: { 'devices/drivers/driver-base.ts': uses('../../machine/index.js'), 'machine/index.ts': leaf },
  },
  {
    rule: 'no-circular',
    file: 'iommu/control/a.ts',
    files: { 'iommu/control/a.ts': uses('./b.js'), 'iommu/control/b.ts': uses('./a.js') },
  },
  {
    rule: 'no-orphans',
    file: 'iommu/control/lonely.ts',
    files: { 'iommu/control/lonely.ts': leaf },
  },
  {
    rule: 'not-to-unresolvable',
    file: 'iommu/control/core.ts',
    files: { 'iommu/control/core.ts': uses('./missing.js') },
  },
];

for (const { rule, file, files } of broken) {
  t.test(`${rule} fails when broken, naming the file`, async (t) => {
    const { failed, output } = await cruise(t, files);
    t.ok(failed, 'the check fails');
    t.match(output, new RegExp(`error ${rule}: ${file.replace(/[.]/g, '[.]')}`), `it names ${rule} and ${file}`);
  });
}

t.test('the same kind of tree with every import going downward passes', async (t) => {
  const { failed, output } = await cruise(t, {
    'base/numbers.ts': leaf,
    'hardware/substrate.ts': uses('../base/numbers.js'),
    'iommu/control/core.ts': uses('../../hardware/substrate.js'),
    'devices/models/nvme.ts': uses('../../iommu/control/core.js'),
    'devices/drivers/nvme-driver.ts': uses('../models/nvme.js'),
    'workers/pool.ts': uses('../devices/models/nvme.js'),
    'machine/platform.ts': uses('../workers/pool.js'),
    'machine/index.ts': `export * from './platform.js';\nimport '../devices/drivers/nvme-driver.js';\n`,
  });
  t.notOk(failed, output);
  t.match(output, /no dependency violations found/);
});
