import type fc from 'fast-check';
import { checkWorld, Divergence, expectEqual, showStatus } from './checks.js';
import { sampleDataPlane } from './data-plane-sample.js';
import type { Model } from './model.js';
import type { World } from './world.js';

export const S = {
  SUCCESS: 0,
  UNSUCCESSFUL: 0xc0000001,
  INVALID_PARAMETER: 0xc000000d,
  ACCESS_DENIED: 0xc0000022,
  BUFFER_TOO_SMALL: 0xc0000023,
  MIX: 0xc0000030,
  INSUFFICIENT_RESOURCES: 0xc000009a,
  NOT_SUPPORTED: 0xc00000bb,
  NOT_FOUND: 0xc0000225,
  IN_USE: 0xc0000708,
} as const;

/** STATUS_INVALID_PARAMETER_n. */
export function P(n: number): number {
  return 0xc00000ef + n - 1;
}

/** An `_Out_` holder: usable, or one the routine must refuse (frozen, or not an object). */
export type OutKind = 'ok' | 'frozen' | 'primitive';

export function makeOut(kind: OutKind): { value?: unknown } {
  if (kind === 'frozen') return Object.freeze({}) as { value?: unknown };
  if (kind === 'primitive') return 7 as unknown as { value?: unknown };
  return {};
}

/**
 * One fuzz command: works out the status the model expects, calls the routine, compares,
 * updates the model, then checks the whole world against it. Commands name handles by
 * reference, so any sequence is valid to run; the model decides what each call must answer.
 */
export abstract class Step implements fc.AsyncCommand<Model, World, false> {
  check(): boolean {
    return true;
  }

  async run(m: Model, w: World): Promise<void> {
    w.steps++;
    await this.apply(m, w);
    checkWorld(m, w);
    await sampleDataPlane(m, w);
  }

  protected abstract apply(m: Model, w: World): Promise<void> | void;
  abstract toString(): string;

  /** Calls routine `name` and checks its status against `expected`; returns the status. */
  protected call(w: World, name: string, expected: number, args: unknown[]): number {
    let status: unknown;
    try {
      status = w.V2[name]!(...args);
    } catch (error) {
      throw new Divergence(
        `${name} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}; the model expects ${showStatus(expected)}`,
      );
    }
    let seen = w.statuses.get(name);
    if (seen === undefined) w.statuses.set(name, (seen = new Set()));
    seen.add(status as number);
    if (status !== expected) throw new Divergence(`${name} returned ${showStatus(status)}; the model expects ${showStatus(expected)}`);
    return status as number;
  }

  /** An `_Out_` parameter must stay untouched on failure. */
  protected untouched(out: unknown, what: string): void {
    if (typeof out === 'object' && out !== null) expectEqual('value' in out, false, `${what}: _Out_ written on failure`);
  }
}
