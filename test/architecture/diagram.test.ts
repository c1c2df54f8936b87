import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

/**
 * scripts/architecture-diagram.mjs keeps the diagrams of docs/architecture.md true to the
 * imports (npm run check:diagram): a stale diagram fails the check naming the file and the
 * diagram, rewriting gives back exactly the committed document, and a document without the
 * markers or a mistyped option is refused.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const script = path.join(root, 'scripts', 'architecture-diagram.mjs');
const committed = readFileSync(path.join(root, 'docs', 'architecture.md'), 'utf8');
const run = promisify(execFile);

async function diagram(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

function scratch(t: Test, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'viommu-diagram-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'architecture.md');
  writeFileSync(file, text);
  return file;
}

t.test('a diagram that no longer matches the imports fails the check; rewriting restores the committed document', async (t) => {
  const dmaPath = committed.indexOf('<!-- diagram:dma-path');
  const edge = committed.indexOf('-->', committed.indexOf('\n', committed.indexOf('flowchart', dmaPath)));
  const lineStart = committed.lastIndexOf('\n', edge) + 1;
  const stale = committed.slice(0, lineStart) + committed.slice(committed.indexOf('\n', edge) + 1);
  t.not(stale, committed, 'one import edge of the DMA path left out');
  const file = scratch(t, stale);
  const check = await diagram('--check', '--file', file);
  t.equal(check.code, 1, 'the check fails');
  t.match(check.stderr, `${path.basename(file)}: diagram 'dma-path' differs from what the code gives`, 'naming the file and the diagram');
  t.notMatch(check.stderr, /'layers'/, 'and only the stale one');
  t.equal(readFileSync(file, 'utf8'), stale, '--check writes nothing');
  const write = await diagram('--file', file);
  t.equal(write.code, 0);
  t.equal(readFileSync(file, 'utf8'), committed, 'the rewritten document is the committed one: docs/architecture.md matches the code');
});

t.test('a document without the diagram markers, and a mistyped option, are refused', async (t) => {
  const file = scratch(t, committed.replace(/<!-- end diagram:layers -->\n/, ''));
  const missing = await diagram('--check', '--file', file);
  t.equal(missing.code, 1);
  t.match(missing.stderr, `${path.basename(file)}: no diagram:layers block`);
  const option = await diagram('--chek');
  t.equal(option.code, 2, 'exit 2 for a command-line error');
  t.match(option.stderr, /--chek/, 'naming the option');
});
