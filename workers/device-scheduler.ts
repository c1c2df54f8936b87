import { runSoon } from '../base/macrotask.js';
import { kControlPending, type DeviceControlTable } from '../hardware/device-control-table.js';
import type { PciBus } from '../hardware/pci-bus.js';
import type { PciFunction } from '../hardware/pci-function.js';
import type { DeviceWorkResult } from './device-runner.js';

export interface DeviceSchedulerHooks {
  /** Runs one device-work task in the pool. */
  run(slot: number): Promise<DeviceWorkResult>;
  /**
   * Optional: runs one batch on this thread and returns when it is done (the data plane on
   * the platform's own thread, workers/inline-pool.ts). With it, a doorbell is served, and
   * the batch's interrupts delivered, before the register write that rang it returns.
   */
  runNow?(slot: number): DeviceWorkResult;
  /** Delivers queued faults (before the interrupts of the same batch). */
  drainFaults(): void;
  /** A batch failed: the model threw or its worker died. */
  onError(fn: PciFunction, error: unknown): void;
  /** An interrupt handler threw. */
  onCallbackError(error: unknown): void;
}

/**
 * Main-thread side of the device models: turns doorbells and kicks into device-work tasks,
 * at most one in flight per device (so a device's batches never overlap and any worker may
 * run the next one), and delivers the batches' interrupts on this thread.
 *
 * With runNow (the data plane on this thread) batches run at once, from a queue drained by
 * the first kick on the stack: a doorbell rung while a batch runs (by an interrupt handler,
 * or a model's kick) joins the queue instead of recursing, and everything it leads to is done
 * before that first kick returns. A batch that stopped at its limit with work left
 * (context.again()) goes on after a macrotask, so that the emulator sharing this thread runs
 * meanwhile.
 */
export class DeviceScheduler {
  readonly #bus: PciBus;
  readonly #control: DeviceControlTable;
  readonly #hooks: DeviceSchedulerHooks;
  readonly #inFlight = new Set<number>();
  /** Devices waiting for runNow, and whether a kick further up the stack is draining them. */
  readonly #queue: number[] = [];
  #draining = false;
  #idleWaiters: Array<() => void> = [];
  #closed = false;
  /** Batches run, and batches that failed. */
  batches = 0;
  failures = 0;

  constructor(bus: PciBus, control: DeviceControlTable, hooks: DeviceSchedulerHooks) {
    this.#bus = bus;
    this.#control = control;
    this.#hooks = hooks;
  }

  /** The device at `slot` has work: run it now or right after its current batch. */
  kick(slot: number): void {
    this.#control.set(slot, kControlPending, 1);
    if (this.#inFlight.has(slot) || this.#closed) return;
    this.#inFlight.add(slot);
    this.#launch(slot);
  }

  /** Resolves once no device has work in flight or pending. */
  idle(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** True while a batch is in flight (work merely pending is device state: a snapshot keeps it). */
  get busy(): boolean {
    return this.#inFlight.size > 0;
  }

  /** Whether device `slot` has work no batch has picked up yet. */
  pending(slot: number): boolean {
    return this.#control.get(slot, kControlPending) === 1;
  }

  close(): void {
    this.#closed = true;
  }

  /** Runs a batch of `slot`, which is in flight already. */
  #launch(slot: number): void {
    const runNow = this.#hooks.runNow;
    if (runNow === undefined) {
      this.#hooks.run(slot).then(
        (result) => this.#finished(slot, result),
        (error: unknown) => this.#failed(slot, error),
      );
      return;
    }
    this.#queue.push(slot);
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        let result: DeviceWorkResult;
        try {
          result = runNow(next);
        } catch (error) {
          this.#failed(next, error);
          continue;
        }
        this.#finished(next, result);
      }
    } finally {
      this.#draining = false;
    }
  }

  #finished(slot: number, result: DeviceWorkResult): void {
    this.batches++;
    this.#hooks.drainFaults();
    const fn = this.#bus.functionAt(slot);
    // The device stays in flight while its interrupts are handled: a handler that rings the
    // device's doorbell (an NVMe driver moving its CQ head) only marks work pending, and the
    // check below runs the device once more, never twice at the same time.
    for (const vector of result.interrupts) {
      try {
        fn?.deliverInterrupt(vector);
      } catch (error) {
        this.#hooks.onCallbackError(error);
      }
    }
    this.#inFlight.delete(slot);
    for (const other of result.kicks) this.kick(other);
    if (this.#closed || this.#inFlight.has(slot)) {
      this.#settle();
    } else if (!result.ran) {
      // Another holder of the lock (a custom worker module) is running it: look again shortly.
      runSoon(() => {
        if (this.#inFlight.has(slot) || this.#closed) return;
        this.#inFlight.add(slot);
        this.#launch(slot);
      });
      this.#settle();
    } else if (!result.again && this.#control.get(slot, kControlPending) !== 1) {
      this.#settle();
    } else if (result.again && this.#hooks.runNow !== undefined) {
      // On this thread: the rest of the work after a macrotask (the device stays in flight meanwhile).
      this.#inFlight.add(slot);
      runSoon(() => (this.#closed ? this.#abandon(slot) : this.#launch(slot)));
    } else {
      this.#inFlight.add(slot);
      this.#launch(slot);
    }
  }

  #failed(slot: number, error: unknown): void {
    this.batches++;
    this.failures++;
    this.#inFlight.delete(slot);
    // A worker that died mid-batch cannot release the device; its successor must find it free.
    this.#control.unlock(slot);
    this.#hooks.drainFaults();
    const fn = this.#bus.functionAt(slot);
    if (fn !== undefined) this.#hooks.onError(fn, error);
    this.#settle();
  }

  /** The platform closed while `slot` waited for its next batch. */
  #abandon(slot: number): void {
    this.#inFlight.delete(slot);
    this.#settle();
  }

  #settle(): void {
    if (this.#inFlight.size > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
