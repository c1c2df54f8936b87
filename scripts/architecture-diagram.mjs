#!/usr/bin/env node
// The diagrams of docs/architecture.md, generated from the code: dependency-cruiser reads the
// package's imports once (with the project's .dependency-cruiser.cjs, so modules resolve as
// `npm run check:deps` resolves them) and renders each diagram as Mermaid. Each lives between
//   <!-- diagram:NAME ... -->   and   <!-- end diagram:NAME -->
// in the document.
//
//   node scripts/architecture-diagram.mjs            rewrites the blocks (npm run diagram)
//   node scripts/architecture-diagram.mjs --check    only compares; exits 1 naming the file and
//                                                    the diagram when the code gives another one
//                                                    (npm run check:diagram, part of npm run check)
//   --file PATH                                      another document (default docs/architecture.md)
//
// Plain Node, no build step. Progress goes to stderr on a terminal only.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LAYERS = ['base', 'hardware', 'iommu', 'devices', 'workers', 'machine'];

/** What each diagram shows, as dependency-cruiser's format options over the whole package's graph. */
const DIAGRAMS = {
  // The layers: every module collapsed into its layer folder.
  layers: { includeOnly: `^(${LAYERS.join('|')})/`, collapse: `^(${LAYERS.join('|')})` },
  // The modules one DMA passes through: platform.dma() hands a task to the pool (piscina in
  // Node; Web Workers in a page, where the browser build puts environment.browser.ts in place
  // of environment.ts), a worker's task runner gives it to the device's DMA port, whose
  // translation engine reads the shared-memory tables (IOTLB, walkers, identity windows,
  // invalidation log) and, on a fault, writes a record into its fault ring, which the main
  // thread's fault dispatcher drains.
  'dma-path': {
    includeOnly: [
      '^machine/platform[.]ts$',
      '^workers/(environment|environment[.]browser|pool|piscina-pool|web-worker-pool|web-worker-protocol|tasks|dma-worker|dma-worker[.]browser|task-runner|worker-runtime)[.]ts$',
      '^iommu/data-plane/',
      '^iommu/shared-memory/',
      '^iommu/control/fault-dispatcher[.]ts$',
    ],
  },
};

const USAGE = `usage: node scripts/architecture-diagram.mjs [--check] [--file PATH]

  --check        compare the document's diagrams with what the code gives; exit 1 when one differs
  --file PATH    the document (default docs/architecture.md)`;

let values;
try {
  ({ values } = parseArgs({
    options: { check: { type: 'boolean' }, file: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  console.error(`architecture-diagram: ${error.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const file = path.resolve(values.file ?? path.join(root, 'docs', 'architecture.md'));
const shown = path.relative(process.cwd(), file) || file;

/** The document's text and, for each diagram, where its block lies; exits 1 when a marker is missing. */
function blocksOf(text) {
  const blocks = {};
  for (const name of Object.keys(DIAGRAMS)) {
    const begin = text.match(new RegExp(`^<!-- diagram:${name}\\b.*-->\\n`, 'm'));
    const end = text.indexOf(`<!-- end diagram:${name} -->`);
    if (begin === null || end < begin.index) {
      console.error(`${shown}: no diagram:${name} block (<!-- diagram:${name} ... --> ... <!-- end diagram:${name} -->)`);
      process.exit(1);
    }
    blocks[name] = { from: begin.index + begin[0].length, to: end };
  }
  return blocks;
}

const progress = (message) => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${message}`);
};

const text = readFileSync(file, 'utf8');
const blocks = blocksOf(text);

progress('architecture-diagram: reading the imports...');
// The package's main module is src/main/index.mjs; its command line sits in bin/.
const depcruise = fileURLToPath(new URL('../../bin/dependency-cruise.mjs', import.meta.resolve('dependency-cruiser')));
let json;
try {
  json = execFileSync(process.execPath, [depcruise, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', ...LAYERS], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
} catch (error) {
  // A rule violation makes the exit code non-zero, but the graph is still whole: the diagram
  // shows what the code imports, and `npm run check:deps` reports the violation.
  if (typeof error.stdout !== 'string' || !error.stdout.startsWith('{')) throw error;
  json = error.stdout;
}
const { format } = await import('dependency-cruiser');
const result = JSON.parse(json);
// In path order, so that the diagrams do not depend on the order a file system lists folders in.
const bySource = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
result.modules.sort((a, b) => bySource(a.source, b.source));
for (const module of result.modules) module.dependencies.sort((a, b) => bySource(a.resolved, b.resolved));

let updated = text;
const stale = [];
// From the last block to the first, so that earlier offsets stay valid.
for (const [name, options] of Object.entries(DIAGRAMS).sort(([a], [b]) => blocks[b].from - blocks[a].from)) {
  progress(`architecture-diagram: ${name}...`);
  const { output } = await format(result, { outputType: 'mermaid', ...options });
  const block = `\`\`\`mermaid\n${output.trimEnd()}\n\`\`\`\n`;
  const { from, to } = blocks[name];
  if (updated.slice(from, to) !== block) stale.push(name);
  updated = updated.slice(0, from) + block + updated.slice(to);
}
progress('');

if (values.check) {
  for (const name of stale.reverse()) console.error(`${shown}: diagram '${name}' differs from what the code gives (run npm run diagram)`);
  process.exit(stale.length === 0 ? 0 : 1);
}
if (stale.length > 0) {
  writeFileSync(file, updated);
  console.log(`${shown}: rewrote ${stale.reverse().join(', ')}`);
}
