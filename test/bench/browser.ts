import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { bundlePages, pageMounts, projectRoot } from '../../examples/web/page-bundle.js';
import { startStaticServer } from '../../examples/web/static-server.js';
import { chromiumPath, launchChromium } from '../browser/chromium.js';

/**
 * `npm run bench -- --browser`: the DMA copy scenarios (dmaCopyRatio, 4 KiB and 1 MiB) in
 * Chromium, through the package's browser build and a Web Worker, printed as the Node
 * benchmark prints them and written under `browser` with --json. Ends the process.
 */
const SIZES = [4096, 1048576];

export async function runBrowserBenchmark(options: { quick: boolean; json: string | undefined }): Promise<never> {
  const started = performance.now();
  const root = projectRoot();
  const pages = join(root, '.bench', 'browser');
  mkdirSync(pages, { recursive: true });
  await bundlePages({ bench: join(root, 'test', 'bench', 'browser-page.ts'), workloads: join(root, 'test', 'bench', 'workloads.ts') }, pages);
  writeFileSync(
    join(pages, 'index.html'),
    '<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<title>viommu benchmark</title>\n<script type="module" src="./bench.js"></script>\n',
  );
  const version = execFileSync(chromiumPath(), ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .trim()
    .replace(/ built on .*$/, '');
  const server = await startStaticServer({ mounts: pageMounts(pages) });
  const chromium = await launchChromium();
  let ratios: Record<string, number>;
  try {
    const page = await chromium.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(server.url);
    await page.waitForFunction(() => 'probes' in globalThis, undefined, { timeout: 30_000 });
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K[browser] dmaCopyRatio in ${version}...`);
    ratios = (await page.evaluate(
      ([sizes, quick]) =>
        (globalThis as unknown as { probes: { dmaCopyRatio(sizes: number[], quick: boolean): Promise<Record<string, number>> } }).probes.dmaCopyRatio(
          sizes,
          quick,
        ),
      [SIZES, options.quick] as const,
    )) as Record<string, number>;
    if (problems.length > 0) throw new Error(`the benchmark page failed: ${problems.join('; ')}`);
  } finally {
    await chromium.close();
    await server.close();
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  }

  const figures = {
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    quick: options.quick,
    browser: { chromium: version, dmaCopyRatio: ratios },
    seconds: (performance.now() - started) / 1000,
  };
  console.log(`viommu benchmark in ${version} (${figures.machine.cpus} cpus, ${figures.machine.cpuModel}${options.quick ? ', quick' : ''})`);
  const rows = SIZES.map((size) => [`browser.dmaCopyRatio[${size}]`, ratios[String(size)]] as const);
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, ratio] of rows) console.log(`  ${name.padEnd(width)}  ${(ratio ?? Number.NaN).toFixed(2).padEnd(28)}  >= 0.9`);
  if (options.json !== undefined) writeFileSync(options.json, `${JSON.stringify(figures, null, 2)}\n`);
  // A figure that measured nothing is a failure, not a pass.
  const empty = rows.filter(([, ratio]) => ratio === undefined || !Number.isFinite(ratio) || ratio <= 0);
  for (const [name] of empty) console.error(`bench: ${name} measured nothing`);
  await new Promise((flushed) => process.stdout.write('', flushed));
  process.exit(empty.length > 0 ? 1 : 0);
}
