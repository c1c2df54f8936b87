import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { projectRoot } from '../../examples/web/page-bundle.js';
import { startStaticServer } from '../../examples/web/static-server.js';
import { launchChromium } from './chromium.js';

/**
 * The README's "In a web page" snippet, exactly as printed, as the page of a project that
 * installed viommu (its node_modules/viommu/dist/browser/ served beside the page): it must
 * run in Chromium and show the bytes it read through the IOMMU.
 */
t.test("the README's web page snippet runs in Chromium", async (t) => {
  const root = projectRoot();
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## In a web page'));
  const snippet = /```html\n([\s\S]*?)```/.exec(section)?.[1];
  t.ok(snippet, 'the section has an html snippet');
  const site = mkdtempSync(join(tmpdir(), 'viommu-readme-'));
  t.teardown(() => rmSync(site, { recursive: true, force: true }));
  writeFileSync(join(site, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<body></body>\n${snippet}`);
  const server = await startStaticServer({ mounts: { '/': site, '/node_modules/viommu/dist/browser/': join(root, 'dist', 'browser') } });
  t.teardown(() => server.close());
  const chromium = await launchChromium();
  t.teardown(() => chromium.close());
  const page = await chromium.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  await page.goto(server.url);
  await page.waitForFunction(() => (globalThis as unknown as { document: { body: { textContent: string } } }).document.body.textContent !== '', undefined, {
    timeout: 20_000,
  });
  t.equal(await page.locator('body').textContent(), 'read through the IOMMU: 1, 2, 3, 4');
  t.same(problems, []);
});
