// Builds dist/: one ESM bundle per entry point (the library and viommu/v86, each worker, the
// command-line tools), the browser build (dist/browser/: the library and its Web Worker, and
// viommu/v86, each self-contained), and the package's type declarations, dist/index.d.ts and
// dist/v86.d.ts (see declarations() and v86Declarations() below). Run by `npm run build`, and
// by `npm install` in a clone (prepare, with --prepare: the build tools are devDependencies, so
// a clone installed with `npm install --omit=dev` has none of them; it says so and builds
// nothing rather than failing the install).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';

const tools = await import('esbuild').catch((error) => {
  if (process.argv.includes('--prepare') && error?.code === 'ERR_MODULE_NOT_FOUND') return null;
  throw error;
});
if (tools === null) {
  console.warn('viommu: dist/ not built: the build tools (devDependencies) are not installed. Run `npm install`, then `npm run build`.');
  process.exit(0);
}
const { build } = tools;

const entries = [
  // [entry, bundle (under dist/)], or [{ bundle: entry, ... }, where the bundles sit]:
  // the library and its v86 binding (viommu/v86) are one build, split, so that the modules both
  // use live in one shared chunk and the two entries see one Platform class and its internals.
  [{ index: 'machine/index.ts', v86: 'machine/v86/index.ts' }, 'index'],
  ['workers/dma-worker.ts', 'workers/dma-worker'],
  // The tools import the package itself ('viommu', external below), as users' code would.
  ['examples/demo.ts', 'examples/demo'],
  ['examples/stress/cli.ts', 'bin/viommu-stress'],
  // Loaded by viommu-stress in a worker to kill it (the soak's worker kills).
  ['examples/stress/worker-exit.ts', 'bin/worker-exit'],
];
const WORKER_BUNDLE = 'workers/dma-worker.js';

// The browser build: the same package entry with the browser environment, and its worker.
const browserEntries = [
  ['machine/index.ts', 'browser/index'],
  ['workers/dma-worker.browser.ts', 'browser/dma-worker'],
  // Self-contained too, so its own copy of the platform: in a page, make the platform with
  // createV86Platform (dataPlane 'main-thread': it needs no cross-origin isolation).
  ['machine/v86/index.ts', 'browser/v86'],
];
const BROWSER_WORKER_BUNDLE = 'browser/dma-worker.js';

/**
 * In a bundle, the DMA worker's URL is a literal relative to that bundle, written as
 * `new URL('…', import.meta.url)`: the pattern Vite, webpack 5 and Parcel follow to ship the
 * worker with an application that bundles viommu (workers/dma-worker-url.ts).
 */
function workerUrlPlugin(out, workerBundle = WORKER_BUNDLE) {
  const relative = posix.relative(posix.dirname(out), workerBundle);
  const fromBundle = relative.startsWith('../') ? relative : `./${relative}`;
  return {
    name: 'viommu-worker-url',
    setup(pluginBuild) {
      pluginBuild.onLoad({ filter: /workers[\\/]dma-worker-url\.ts$/ }, () => ({
        contents: `export function defaultDmaWorkerUrl() { return new URL(${JSON.stringify(fromBundle)}, import.meta.url); }\n`,
        loader: 'js',
      }));
    },
  };
}

/**
 * In the browser build, workers/environment.ts (piscina, node:os, node:module) is replaced by
 * workers/environment.browser.ts (Web Workers), so no Node module is left in dist/browser/.
 */
const browserEnvironmentPlugin = {
  name: 'viommu-browser-environment',
  setup(pluginBuild) {
    const nodeEnvironment = resolve('workers/environment.js');
    pluginBuild.onResolve({ filter: /(^|[\\/])environment\.js$/ }, (args) =>
      resolve(args.resolveDir, args.path) === nodeEnvironment ? { path: resolve('workers/environment.browser.ts') } : undefined,
    );
  },
};

rmSync('dist', { recursive: true, force: true });
const browserBuilds = browserEntries.map(([entry, out]) =>
  build({
    entryPoints: { [out]: entry },
    outdir: 'dist',
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'esm',
    // Self-contained (msgpackr included): a page can import it without a bundler or an import map.
    sourcemap: true,
    logLevel: 'warning',
    plugins: [workerUrlPlugin(out, BROWSER_WORKER_BUNDLE), browserEnvironmentPlugin],
  }),
);
await Promise.all([
  ...browserBuilds,
  ...entries.map(([entry, out]) =>
    build({
      entryPoints: typeof entry === 'string' ? { [out]: entry } : entry,
      outdir: 'dist',
      bundle: true,
      splitting: typeof entry !== 'string',
      // Chunks sit beside index.js, so that the worker's URL is the same from either.
      chunkNames: 'shared-[hash]',
      platform: 'node',
      target: 'node20',
      format: 'esm',
      packages: 'external',
      external: ['viommu', 'viommu/v86'],
      sourcemap: true,
      logLevel: 'warning',
      plugins: [workerUrlPlugin(out)],
    }),
  ),
]);
writeFileSync('dist/index.d.ts', await declarations());
writeFileSync('dist/v86.d.ts', v86Declarations());

/**
 * The public API's declarations bundled into one file by dts-bundle-generator (which compiles
 * with this repository's TypeScript): what machine/index.ts exports and every type those
 * refer to, with `@internal` members stripped (tsconfig.build.json), and no reference to
 * @types/node (allowedTypesLibraries: none), so that a consumer needs neither Node's nor the
 * DOM's declarations. One self-contained file has no declaration maps pointing at sources the
 * package does not ship. test/package/declarations.test.ts typechecks a consumer against it.
 */
async function declarations() {
  const { generateDtsBundle } = await import('dts-bundle-generator');
  const [bundle] = generateDtsBundle([{ filePath: 'machine/index.ts', libraries: { allowedTypesLibraries: [] }, output: { noBanner: true } }], {
    preferredConfigPath: 'tsconfig.build.json',
  });
  return `// viommu's public API (generated from the TypeScript sources by build.mjs).\n${bundle}`;
}

/**
 * viommu/v86's declarations in one file, dist/v86.d.ts: tsc's declarations of machine/v86/
 * (`@internal` stripped), joined, with every type they take from the rest of the package
 * imported from 'viommu' instead, so that both entries name one Platform, one PciFunction
 * (a second copy of a class with private members would be a different type). Each of those
 * types is a public export of 'viommu'; test/package/declarations.test.ts typechecks a
 * consumer of both.
 */
function v86Declarations() {
  const out = mkdtempSync(join(tmpdir(), 'viommu-v86-declarations-'));
  try {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out], { stdio: 'inherit' });
    const fromViommu = new Set();
    const bodies = ['emulator', 'binding', 'assignment', 'index'].map((name) =>
      readFileSync(join(out, 'machine', 'v86', `${name}.d.ts`), 'utf8')
        .split('\n')
        .filter((line) => {
          const imported = /^import (?:type )?\{([^}]*)\} from '(\.[^']*)';$/.exec(line);
          if (imported !== null) {
            // From another module of the binding: the same file now. From the package: 'viommu'.
            if (!imported[2].startsWith('./')) for (const name of imported[1].split(',')) fromViommu.add(name.replace(/\btype\b/, '').trim());
            return false;
          }
          return !/^export (?:type )?\{[^}]*\} from '\.\/[^']*';$/.test(line) && !/^\/\/# sourceMappingURL/.test(line);
        })
        .join('\n'),
    );
    const names = [...fromViommu].filter(Boolean).sort();
    return `// viommu/v86's public API (generated from the TypeScript sources by build.mjs).\nimport type { ${names.join(', ')} } from 'viommu';\n${bodies.join('\n')}`;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
