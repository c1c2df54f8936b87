// Builds dist/: one ESM bundle per entry point (the library, each worker, the command-line
// tools), the browser build (dist/browser/: the library and its Web Worker, self-contained),
// and the package's type declarations as one file, dist/index.d.ts (see
// declarations() below). Run by `npm run build`, and by `npm install` in a clone (prepare,
// with --prepare: the build tools are devDependencies, so a clone installed with
// `npm install --omit=dev` has none of them; it says so and builds nothing rather than
// failing the install).
import { rmSync, writeFileSync } from 'node:fs';
import { posix, resolve } from 'node:path';

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
  // [entry, bundle (under dist/)]
  ['machine/index.ts', 'index'],
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
      entryPoints: { [out]: entry },
      outdir: 'dist',
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      packages: 'external',
      external: ['viommu'],
      sourcemap: true,
      logLevel: 'warning',
      plugins: [workerUrlPlugin(out)],
    }),
  ),
]);
writeFileSync('dist/index.d.ts', await declarations());

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
