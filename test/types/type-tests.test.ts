import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

/**
 * The type tests (v2-table.ts) fail for the right reason. `npm run check` already fails when a
 * misuse compiles (an unused `@ts-expect-error`); this test also fails when a misuse is refused
 * for another reason than the one it is about: it compiles the file with the directives taken
 * out and expects, on each line after one, the TypeScript error code the directive names, and
 * no error anywhere else (so the correct-use half compiles too).
 */
const typeTests = fileURLToPath(new URL('./v2-table.ts', import.meta.url));
const configPath = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));

interface Expectation {
  line: number;
  code: number;
  why: string;
}

function expectations(source: string): Expectation[] {
  const found: Expectation[] = [];
  source.split('\n').forEach((text, index) => {
    const match = /^\s*\/\/ @ts-expect-error TS(\d+) (.+)$/.exec(text);
    if (match) found.push({ line: index + 1, code: Number(match[1]), why: match[2]! });
  });
  return found;
}

/** Errors per line (0-based) of `file` compiled as `text`, with the repository's compiler options. */
function errorsByLine(file: string, text: string): Map<number, ts.Diagnostic[]> {
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const host = ts.createCompilerHost(config.options);
  const readFile = host.getSourceFile;
  host.getSourceFile = (name, languageVersion, onError, shouldCreate) =>
    name === file ? ts.createSourceFile(name, text, languageVersion, true) : readFile(name, languageVersion, onError, shouldCreate);
  const program = ts.createProgram({ rootNames: [file], options: { ...config.options, noEmit: true }, host });
  const source = program.getSourceFile(file)!;
  const byLine = new Map<number, ts.Diagnostic[]>();
  for (const diagnostic of [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]) {
    const { line } = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    byLine.set(line, [...(byLine.get(line) ?? []), diagnostic]);
  }
  return byLine;
}

t.test('each misuse in the type tests fails with the error it names, and nothing else fails', async (t) => {
  const source = readFileSync(typeTests, 'utf8');
  const expected = expectations(source);
  t.ok(expected.length >= 40, `${expected.length} misuse cases`);
  t.equal(expected.length, source.split('\n').filter((line) => /^\s*\/\/ @ts-expect-error/.test(line)).length, 'every directive names its error code');

  // Same length, so every position stays where it was.
  const errors = errorsByLine(typeTests, source.replaceAll('// @ts-expect-error', '// expect-error:   '));
  for (const { line, code, why } of expected) {
    // The directive is on `line` (1-based), so the misuse is on 0-based line `line`.
    const codes = (errors.get(line) ?? []).map((d) => d.code);
    t.ok(codes.includes(code), `line ${line + 1}, ${why}: TS${code} (got ${codes.length === 0 ? 'no error' : codes.map((c) => `TS${c}`).join(', ')})`);
    errors.delete(line);
  }
  const unexpected = [...errors.values()].flat().map((d) => {
    const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
    return `line ${line + 1}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
  t.same(unexpected, [], 'no error outside the misuse lines');
});

t.test('the type tests compile clean as they are (every directive is used)', async (t) => {
  const errors = [...errorsByLine(typeTests, readFileSync(typeTests, 'utf8')).values()].flat();
  t.same(
    errors.map((d) => `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`),
    [],
    `${dirname(typeTests)}/v2-table.ts compiles`,
  );
});
