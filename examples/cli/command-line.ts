import { parseArgs } from 'node:util';

/**
 * Command-line options of the project's tools (viommu-stress, the benchmark), parsed with
 * node:util parseArgs in strict mode: `--name value` and `--name=value` both work, an
 * unknown option, a missing value or a malformed one is refused with a message that names
 * it, and the usage text is generated from the same table, so it cannot drift.
 */

/** A refused command line: the tool prints the message and exits with status 2. */
export class OptionError extends Error {
  override name = 'OptionError';
}

interface ValueOption<T> {
  kind: 'value';
  /** Shown in the usage line: `--seconds S`. */
  placeholder: string;
  description: string;
  default: T;
  /** Turns the text into the value, or throws OptionError naming `--name`. */
  parse: (raw: string, flag: string) => T;
}

interface FlagOption {
  kind: 'flag';
  description: string;
}

export type OptionSpec = ValueOption<unknown> | FlagOption;
export type OptionTable = Record<string, OptionSpec>;

/** The parsed values: a flag is a boolean, a value option its parse result (or default). */
export type OptionValues<Table extends OptionTable> = {
  [Name in keyof Table]: Table[Name] extends ValueOption<infer T> ? T : boolean;
};

export function value<T>(placeholder: string, description: string, defaultValue: T, parse: (raw: string, flag: string) => T): ValueOption<T> {
  return { kind: 'value', placeholder, description, default: defaultValue, parse };
}

export function flag(description: string): FlagOption {
  return { kind: 'flag', description };
}

/** An integer in min..max; "ten", "1.5", "" and "1e3x" are refused. */
export function integerIn(min: number, max: number): (raw: string, flag: string) => number {
  return (raw, flag) => {
    const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new OptionError(`${flag} must be an integer in ${min}..${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
}

/** A finite number in min..max. */
export function numberIn(min: number, max: number): (raw: string, flag: string) => number {
  return (raw, flag) => {
    const n = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new OptionError(`${flag} must be a number in ${min}..${max} (got ${JSON.stringify(raw)})`);
    return n;
  };
}

/** One of `choices`. */
export function oneOf<const T extends string>(...choices: T[]): (raw: string, flag: string) => T {
  return (raw, flag) => {
    if (!(choices as string[]).includes(raw)) throw new OptionError(`${flag} must be one of ${choices.join(', ')} (got ${JSON.stringify(raw)})`);
    return raw as T;
  };
}

/** A non-empty string (a file name, say). */
export function text(raw: string, flag: string): string {
  if (raw.length === 0 || raw.startsWith('--')) throw new OptionError(`${flag} needs a value (got ${JSON.stringify(raw)})`);
  return raw;
}

/**
 * Parses `argv` against `table`. `--help` anywhere returns 'help'; no positional arguments
 * are accepted. Every value option's text goes through its parse function.
 */
export function parseCommandLine<Table extends OptionTable>(argv: readonly string[], table: Table): OptionValues<Table> | 'help' {
  const config: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const [name, spec] of Object.entries(table)) config[name] = { type: spec.kind === 'value' ? 'string' : 'boolean' };
  let parsed: { values: Record<string, string | boolean | undefined> };
  try {
    parsed = parseArgs({ args: [...argv], options: config, strict: true, allowPositionals: false }) as typeof parsed;
  } catch (error) {
    throw new OptionError(describeParseError(error));
  }
  if (parsed.values.help === true) return 'help';
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const raw = parsed.values[name];
    if (spec.kind === 'flag') values[name] = raw === true;
    else values[name] = raw === undefined ? spec.default : spec.parse(raw as string, `--${name}`);
  }
  return values as OptionValues<Table>;
}

/** The options part of a usage text, one line per option, aligned. */
export function usageLines(table: OptionTable): string {
  const rows = Object.entries(table).map(([name, spec]) => [`--${name}${spec.kind === 'value' ? ` ${spec.placeholder}` : ''}`, spec.description] as const);
  rows.push(['--help', 'this text']);
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}

/** parseArgs's messages, shortened to what a person needs: which option, and what is wrong. */
function describeParseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${message.match(/'([^']+)'/)?.[1] ?? ''} (try --help)`.trim();
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${message.match(/'([^']+)'/)?.[1] ?? ''} (try --help)`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = message.match(/--[\w-]+/)?.[0] ?? 'an option';
    if (message.includes('argument missing')) return `${option} needs a value`;
    if (message.includes('ambiguous'))
      return `${option} needs a value, and the next argument is an option (write ${option}=VALUE for a value starting with a dash)`;
    if (message.includes('does not take an argument')) return `${option} takes no value`;
    return message.split('\n')[0] ?? message;
  }
  return message;
}
