import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { projectRoot } from '../../examples/web/page-bundle.js';

/**
 * The browser build (dist/browser/, made by build.mjs) as shipped: no Node module, no
 * piscina, nothing a page could not load without a bundler; the worker found beside the
 * entry; and the package's `exports` conditions sending bundlers for the browser to it.
 * (viommu/v86 has a browser bundle beside it, as self-contained. In Node, dist/index.js and
 * dist/v86.js share a chunk, dist/shared-*.js, beside them.)
 */
const root = projectRoot();
const browserDist = join(root, 'dist', 'browser');

/** Every module specifier a bundle imports: static imports, re-exports, and import() of a string literal. */
function importsOf(code: string): string[] {
  const found: string[] = [];
  for (const pattern of [/\b(?:import|export)\b[^'"();]*?\bfrom\s*["']([^"']+)["']/g, /\bimport\s*["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g]) {
    for (const match of code.matchAll(pattern)) found.push(match[1]!);
  }
  return found;
}

t.test('dist/browser holds the entry and its worker, self-contained, with no Node module and no piscina', async (t) => {
  const bundles = readdirSync(browserDist).filter((name) => name.endsWith('.js'));
  t.same(bundles.sort(), ['dma-worker.js', 'index.js', 'v86.js']);
  for (const name of bundles) {
    const code = readFileSync(join(browserDist, name), 'utf8');
    t.same(importsOf(code), [], `${name} imports nothing: a page loads it as is`);
    for (const word of ['node:', 'piscina', 'worker_threads', 'require(', 'createRequire', 'availableParallelism', 'process.exit']) {
      t.notOk(code.includes(word), `${name} has no ${word}`);
    }
  }
  const entry = readFileSync(join(browserDist, 'index.js'), 'utf8');
  t.equal(entry.split('new URL("./dma-worker.js", import.meta.url)').length - 1, 1, 'the default worker URL is the worker beside the entry');
  // The Node entry and the chunk it shares with dist/v86.js.
  const nodeEntry = readFileSync(join(root, 'dist', 'index.js'), 'utf8');
  const nodeCode = [
    nodeEntry,
    ...importsOf(nodeEntry)
      .filter((specifier) => specifier.startsWith('./'))
      .map((chunk) => readFileSync(join(root, 'dist', chunk), 'utf8')),
  ].join('\n');
  t.match(nodeCode, 'new URL("./workers/dma-worker.js", import.meta.url)', 'and in Node, the Node worker');
  t.ok(importsOf(nodeCode).includes('piscina'), 'the scan sees imports: the Node entry imports piscina');
});

t.test('package.json sends bundlers for the browser to dist/browser/, everything else to dist/', async (t) => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string> | string> };
  t.same(manifest.exports['.'], { types: './dist/index.d.ts', browser: './dist/browser/index.js', default: './dist/index.js' });
  t.same(Object.keys(manifest.exports['.']!), ['types', 'browser', 'default'], 'types first, browser ahead of default');
  t.same(manifest.exports['./dma-worker.js'], { browser: './dist/browser/dma-worker.js', default: './dist/workers/dma-worker.js' });
  t.same(manifest.exports['./v86'], { types: './dist/v86.d.ts', browser: './dist/browser/v86.js', default: './dist/v86.js' });

  // A separate project that depends on viommu, bundled for each platform.
  const project = mkdtempSync(join(tmpdir(), 'viommu-bundler-'));
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'viommu'), 'dir');
  writeFileSync(join(project, 'app.js'), "import { createPlatform } from 'viommu';\nexport { createPlatform };\n");
  const inputsFor = async (platform: 'browser' | 'node') => {
    const result = await build({
      entryPoints: [join(project, 'app.js')],
      absWorkingDir: project,
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform,
      external: platform === 'node' ? ['piscina', 'msgpackr'] : [],
      logLevel: 'silent',
    });
    return Object.keys(result.metafile.inputs).filter((input) => input.includes('dist/'));
  };
  const browser = await inputsFor('browser');
  t.equal(browser.length, 1);
  t.match(browser[0], /dist\/browser\/index\.js$/, 'a browser bundler takes dist/browser/index.js');
  const node = await inputsFor('node');
  t.ok(
    node.some((input) => /dist\/index\.js$/.test(input)),
    'Node takes dist/index.js',
  );
  t.same(
    node.filter((input) => !/dist\/(index|shared-[A-Z0-9]+)\.js$/.test(input)),
    [],
    'and the chunk it shares with viommu/v86, nothing else',
  );
});
