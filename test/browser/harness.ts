import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Test } from 'tap';
import { bundleDemo, bundlePages, pageMounts, projectRoot } from '../../examples/web/page-bundle.js';
import { type StaticServer, startStaticServer } from '../../examples/web/static-server.js';
import { type Chromium, launchChromium } from './chromium.js';

/**
 * What a browser test needs: probe pages bundled into a fresh folder (one page per entry of
 * test/browser/pages/, importing 'viommu' from the package's browser build), a local server
 * with the cross-origin isolation headers (and, on request, one without them), and Chromium.
 * Everything is torn down when the test ends.
 */
export interface BrowserRig {
  chromium: Chromium;
  /** The pages' server, cross-origin isolated. */
  server: StaticServer;
  /** The same pages without the isolation headers (when asked for). */
  plainServer: StaticServer | null;
  /** The folder the pages were bundled into. */
  pages: string;
  /** Opens `url` in a new tab; the page's errors and console errors are collected in `problems`. */
  open(url: string): Promise<{ page: Page; problems: string[] }>;
}

/** `demo`: also bundle the web demo, served at /demo/. */
export async function browserRig(t: Test, probes: readonly string[], options: { plainServer?: boolean; demo?: boolean } = {}): Promise<BrowserRig> {
  const pages = mkdtempSync(join(tmpdir(), 'viommu-pages-'));
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(pages, { recursive: true, force: true })];
  t.teardown(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const root = projectRoot();
  const entries = Object.fromEntries(probes.map((name) => [name, join(root, 'test', 'browser', 'pages', `${name}.ts`)]));
  if (probes.length > 0) await bundlePages(entries, pages);
  if (options.demo) await bundleDemo(join(pages, 'demo'));
  for (const name of probes) {
    writeFileSync(
      join(pages, `${name}.html`),
      `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<title>${name}</title>\n<script type="module" src="./${name}.js"></script>\n`,
    );
  }
  const mounts = pageMounts(pages);
  const server = await startStaticServer({ mounts });
  cleanups.push(() => server.close());
  let plainServer: StaticServer | null = null;
  if (options.plainServer) {
    plainServer = await startStaticServer({ mounts, crossOriginIsolated: false });
    cleanups.push(() => plainServer!.close());
  }
  const chromium = await launchChromium();
  cleanups.push(() => chromium.close());
  return {
    chromium,
    server,
    plainServer,
    pages,
    async open(url) {
      const page = await chromium.context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
      });
      await page.goto(url);
      return { page, problems };
    },
  };
}

/** Opens the probe page `name` on `server` and waits until its module has registered its probes. */
export async function openProbe(rig: BrowserRig, name: string, server: StaticServer = rig.server): Promise<{ page: Page; problems: string[] }> {
  const opened = await rig.open(`${server.url}${name}.html`);
  await opened.page.waitForFunction(() => 'probes' in globalThis, undefined, { timeout: 20_000 });
  return opened;
}
