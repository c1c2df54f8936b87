import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How the web pages are built (the demo, the browser tests' probe pages, the browser
 * benchmark): esbuild bundles each entry for the browser, except two imports that stay
 * URLs on the page's server, so that the page runs the package's own browser build and the
 * chart library as shipped:
 *
 *   'viommu'  ->  /dist/browser/index.js   (the package's browser entry; its worker beside it)
 *   'viommu/v86'  ->  /dist/browser/v86.js (the v86 binding's browser build)
 *   'uplot'   ->  /vendor/uplot/uPlot.esm.js
 *
 * pageMounts() gives the server the folders behind those URLs.
 */
export const VIOMMU_URL = '/dist/browser/index.js';
const UPLOT_URL = '/vendor/uplot/uPlot.esm.js';

/** The repository's root: the nearest folder above `from` whose package.json is viommu's. */
export function projectRoot(from: string | URL = import.meta.url): string {
  let folder = dirname(fileURLToPath(from));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'viommu') return folder;
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no viommu package.json above ${fileURLToPath(from)}`);
    folder = parent;
  }
}

/** Bundles `entryPoints` (name under outdir -> source file) for the browser into `outdir`. */
export async function bundlePages(entryPoints: Record<string, string>, outdir: string): Promise<void> {
  await build({
    entryPoints,
    outdir,
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'esm',
    sourcemap: true,
    logLevel: 'warning',
    absWorkingDir: projectRoot(),
    plugins: [
      {
        name: 'page-imports-on-the-server',
        setup(pluginBuild) {
          pluginBuild.onResolve({ filter: /^viommu$/ }, () => ({ path: VIOMMU_URL, external: true }));
          pluginBuild.onResolve({ filter: /^viommu\/v86$/ }, () => ({ path: '/dist/browser/v86.js', external: true }));
          pluginBuild.onResolve({ filter: /^uplot$/ }, () => ({ path: UPLOT_URL, external: true }));
        },
      },
    ],
  });
}

/** The web demo (examples/web/page/) into `outdir`: index.html, style.css and demo.js. */
export async function bundleDemo(outdir: string): Promise<void> {
  const page = join(projectRoot(), 'examples', 'web', 'page');
  mkdirSync(outdir, { recursive: true });
  await bundlePages({ demo: join(page, 'demo.ts') }, outdir);
  for (const file of ['index.html', 'style.css']) copyFileSync(join(page, file), join(outdir, file));
}

/**
 * The folders behind the pages' URLs: `pages` at /, the package's browser build at
 * /dist/browser/, uPlot's distribution at /vendor/uplot/.
 */
export function pageMounts(pages: string): Record<string, string> {
  const root = projectRoot();
  const browserBuild = join(root, 'dist', 'browser');
  if (!existsSync(join(browserBuild, 'index.js'))) throw new Error(`${browserBuild} is missing: run \`npm run build\` first`);
  const uplot = dirname(createRequire(join(root, 'package.json')).resolve('uplot'));
  return { '/': pages, '/dist/browser/': browserBuild, '/vendor/uplot/': uplot };
}
