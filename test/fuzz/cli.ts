import { flag, integerIn, numberIn, OptionError, type OptionValues, parseCommandLine, text, usageLines, value } from '../../examples/cli/command-line.js';
import { type FuzzFigures, runFuzz } from './runner.js';

/**
 * `npm run fuzz -- [--seconds N | --runs N] [--seed S] [--path P]`: model-based fuzzing of
 * the V2 table (test/fuzz/). Reports sequences and steps per second; on a divergence prints
 * the shrunk sequence and the arguments that replay it, and exits 1.
 */
const OPTIONS = {
  seconds: value<number | undefined>('N', 'run for N seconds (default: --runs)', undefined, numberIn(1, 86400)),
  runs: value('N', 'sequences to run when --seconds is not given (default 200)', 200, integerIn(1, 10_000_000)),
  seed: value('S', 'seed (default: from the clock; printed)', Date.now() % 2 ** 31, integerIn(-(2 ** 31), 2 ** 31 - 1)),
  path: value<string | undefined>('P', "a failure's path to replay (with its --seed)", undefined, text),
  'replay-path': value<string | undefined>('R', "the commands' replay path printed with a failure", undefined, text),
  'max-commands': value('N', 'commands per sequence at most (default 150)', 150, integerIn(1, 10_000)),
  json: flag('print the figures as JSON'),
};
const USAGE = `usage: npm run fuzz -- [options]\n\n${usageLines(OPTIONS)}`;

let options: OptionValues<typeof OPTIONS> | 'help';
try {
  options = parseCommandLine(process.argv.slice(2), OPTIONS);
} catch (error) {
  if (!(error instanceof OptionError)) throw error;
  console.error(`fuzz: ${error.message}`);
  process.exit(2);
}
if (options === 'help') {
  console.log(USAGE);
  process.exit(0);
}

const tty = process.stderr.isTTY;
const rate = (f: FuzzFigures) =>
  `${f.sequences} sequences, ${f.steps} steps in ${f.seconds.toFixed(1)} s (${(f.sequences / f.seconds).toFixed(1)} sequences/s, ${(f.steps / f.seconds).toFixed(0)} steps/s)`;
if (!options.json) console.error(`fuzz: seed ${options.seed}${options.path === undefined ? '' : `, replaying path ${options.path}`}`);
const result = await runFuzz({
  seed: options.seed,
  path: options.path,
  replayPath: options['replay-path'],
  runs: options.runs,
  seconds: options.seconds,
  maxCommands: options['max-commands'],
  onProgress: tty && !options.json ? (f) => process.stderr.write(`\r\x1b[K${rate(f)}`) : undefined,
});
if (tty && !options.json) process.stderr.write('\r\x1b[K');
if (options.json) console.log(JSON.stringify({ seed: options.seed, ...result }, null, 2));
else {
  console.log(rate(result));
  if (result.replayed !== undefined) console.log(`replay: ${result.replayed}`);
  if (result.failure === null) console.log('no divergence');
  else {
    console.log(`DIVERGENCE: ${result.failure.error}`);
    console.log('shrunk sequence:');
    for (const line of result.failure.commands) console.log(`  ${line}`);
    console.log(`replay: npm run fuzz -- ${result.failure.replay}`);
  }
}
process.exitCode = result.failure === null ? 0 : 1;
