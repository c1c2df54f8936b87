import fc from 'fast-check';
import { deviceCommands } from './device-commands.js';
import { domainCommands } from './domain-commands.js';
import { mappingCommands } from './mapping-commands.js';
import { dmaCommand, miscCommands } from './misc-commands.js';
import { tokenCommands } from './token-commands.js';
import { World } from './world.js';

export interface FuzzOptions {
  seed: number;
  /** fast-check's path of a failure to replay (with its seed), and the commands' replay path. */
  path?: string;
  replayPath?: string;
  /** Sequences to run; with `seconds`, as many as fit in that time. */
  runs?: number;
  seconds?: number;
  /** Commands per sequence at most (default 60). */
  maxCommands?: number;
  /** Called after every sequence with the figures so far. */
  onProgress?: (figures: FuzzFigures) => void;
}

export interface FuzzFigures {
  sequences: number;
  steps: number;
  seconds: number;
  /** Statuses each routine answered (hex), over every sequence: what the fuzzer reached. */
  statuses: Record<string, string[]>;
}

interface FuzzFailure {
  seed: number;
  path: string;
  /** The shrunk sequence, one command per line. */
  commands: string[];
  error: string;
  /** The arguments of `npm run fuzz` that replay it. */
  replay: string;
}

export interface FuzzResult extends FuzzFigures {
  failure: FuzzFailure | null;
  /** Set when a replayed path no longer fails. */
  replayed?: string;
}

/**
 * Every command, weighted: control-plane churn dominates, DMA samples the data plane.
 * A sequence is up to `maxCommands` of them against a fresh model.
 */
function commandsArb(maxCommands: number, replayPath: string | undefined) {
  const weighted = [...domainCommands, ...deviceCommands, ...mappingCommands, ...tokenCommands, ...miscCommands, dmaCommand];
  return fc.commands([fc.oneof(...weighted)], { maxCommands, size: 'max', replayPath });
}

/**
 * Runs model-based sequences of V2 calls, DMA, guest-page and policy changes against one
 * reused platform (a fresh one after any failure), checking the world after every command
 * (see checks.ts). A failure is shrunk by fast-check to a minimal sequence; its seed and
 * path replay it.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  let world: World | null = null;
  let sequences = 0;
  let steps = 0;
  const statuses = new Map<string, Set<number>>();
  const figures = (): FuzzFigures => ({
    sequences,
    steps,
    seconds: (performance.now() - started) / 1000,
    statuses: Object.fromEntries([...statuses].map(([name, set]) => [name, [...set].sort((a, b) => a - b).map((s) => `0x${s.toString(16)}`)])),
  });
  const property = fc.asyncProperty(commandsArb(options.maxCommands ?? 150, options.replayPath), async (commands) => {
    world ??= await World.create();
    const w = world;
    const model = w.model();
    const stepsBefore = w.steps;
    let failure: unknown = null;
    try {
      await fc.asyncModelRun(() => ({ model, real: w }), commands);
      // The teardown is part of the sequence: it must succeed and leave nothing behind.
      await w.teardown(model);
    } catch (error) {
      failure = error;
    }
    sequences++;
    steps += w.steps - stepsBefore;
    for (const [name, set] of w.statuses) {
      let all = statuses.get(name);
      if (all === undefined) statuses.set(name, (all = new Set()));
      for (const status of set) all.add(status);
    }
    w.statuses.clear();
    options.onProgress?.(figures());
    if (failure !== null) {
      // A failed sequence leaves the platform in a state the next model cannot know.
      world = null;
      await w.close();
      throw failure;
    }
  });
  const timed = options.seconds !== undefined;
  const run = async () =>
    fc.check(property, {
      seed: options.seed,
      path: options.path,
      numRuns: timed ? Number.MAX_SAFE_INTEGER : (options.runs ?? 100),
      interruptAfterTimeLimit: timed ? options.seconds! * 1000 : undefined,
      markInterruptAsFailure: false,
      endOnFailure: options.path !== undefined,
    });
  let details: Awaited<ReturnType<typeof run>>;
  try {
    details = await run();
  } catch (error) {
    // fast-check refuses a path that leads to no failure (the bug it recorded is gone).
    if (options.path !== undefined && error instanceof Error && error.message.startsWith('Unable to replay')) {
      await (world as World | null)?.close();
      return { ...figures(), failure: null, replayed: 'the path no longer leads to a failure' };
    }
    throw error;
  }
  await (world as World | null)?.close();
  let failure: FuzzFailure | null = null;
  if (details.failed) {
    const commands = details.counterexample?.[0];
    const lines = commands === undefined ? [] : [...(commands as Iterable<{ toString(): string }>)].map((c) => c.toString());
    // fast-check keeps which commands of the failing run ran in a comment of its own.
    const replayPath = /replayPath=("(?:[^"\\]|\\.)*")/.exec(String(commands))?.[1];
    failure = {
      seed: details.seed,
      path: details.counterexamplePath ?? '',
      commands: lines,
      error: details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance),
      replay: `--seed ${details.seed} --path ${details.counterexamplePath ?? ''}${replayPath === undefined ? '' : ` --replay-path ${JSON.parse(replayPath)}`}`,
    };
  }
  return { ...figures(), failure };
}
