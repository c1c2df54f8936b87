import { kControlModel, kControlPeer, kControlPending, kControlPrivatePage, kControlPrivatePages } from '../hardware/device-control-table.js';
import { PAGE_SIZE } from '../base/numbers.js';
import type { DeviceModel, DeviceWorkContext } from '../devices/device-model.js';
import { MAX_REGISTER_BYTES } from '../hardware/function-model.js';
import { MODEL_LIST } from '../devices/models/registry.js';
import { RegisterFile } from '../hardware/register-file.js';
import type { DeviceSharedState } from '../hardware/device-shared-state.js';
import type { WorkerRuntime } from './worker-runtime.js';
import { loadModule } from './environment.js';
import { deviceModelOf } from '../devices/custom-models.js';

/** What a device-work task reports back: interrupts to deliver, devices to run next. */
export interface DeviceWorkResult {
  /** False when another worker held the device (nothing was done). */
  ran: boolean;
  interrupts: number[];
  kicks: number[];
  again: boolean;
}

/**
 * Runs one batch of a device's work in this worker: takes the device's lock (so no other
 * worker runs it at the same time), clears its pending flag, calls the model's `process`,
 * and releases the lock even if the model throws.
 */
export class DeviceRunner {
  readonly #runtime: WorkerRuntime;
  readonly #devices: DeviceSharedState;
  readonly #registers: (RegisterFile | undefined)[] = [];
  /** Each function's scratch (DeviceModel.createScratch) on this thread. */
  readonly #scratch: unknown[] = [];
  /** Built-in models, then custom ones as they are first needed. */
  readonly #models: (DeviceModel | undefined)[];
  readonly #customUrls: readonly string[];

  /** `customModels`: custom models already loaded, in order (the main thread's own data plane has them all). */
  constructor(runtime: WorkerRuntime, devices: DeviceSharedState, customUrls: readonly string[] = [], customModels: readonly DeviceModel[] = []) {
    this.#runtime = runtime;
    this.#devices = devices;
    this.#customUrls = customUrls;
    this.#models = [...MODEL_LIST, ...customModels];
  }

  async run(slot: number): Promise<DeviceWorkResult> {
    const index = this.#devices.control.get(slot, kControlModel);
    const model = this.#models[index] ?? (this.#models[index] = await this.#loadCustom(index));
    return this.#runModel(slot, model);
  }

  /** run() without waiting: on the thread that calls it, now, for a model that is loaded already. */
  runNow(slot: number): DeviceWorkResult {
    const index = this.#devices.control.get(slot, kControlModel);
    const model = this.#models[index];
    if (model === undefined) throw new Error(`device model ${index} is not loaded on this thread`);
    return this.#runModel(slot, model);
  }

  #runModel(slot: number, model: DeviceModel): DeviceWorkResult {
    const control = this.#devices.control;
    const result: DeviceWorkResult = { ran: false, interrupts: [], kicks: [], again: false };
    if (!control.tryLock(slot)) return result;
    try {
      control.set(slot, kControlPending, 0);
      const registers = (this.#registers[slot] ??= new RegisterFile(this.#devices.registers, slot * MAX_REGISTER_BYTES, Math.max(4, model.registerBytes)));
      const context: DeviceWorkContext = {
        registers,
        scratch: (this.#scratch[slot] ??= model.createScratch?.()),
        port: this.#runtime.portFor(slot),
        privateMemory: this.#privateMemory(slot),
        slot,
        peer: control.get(slot, kControlPeer),
        raise: (vector) => result.interrupts.push(vector),
        kick: (other) => {
          // Marks the other device's work as pending before the main thread schedules it.
          control.set(other, kControlPending, 1);
          result.kicks.push(other);
        },
        privateMemoryOf: (other) => (other >= 0 && other < control.capacity ? this.#privateMemory(other) : null),
        again: () => {
          result.again = true;
        },
      };
      result.ran = true;
      model.process(context);
      return result;
    } finally {
      control.unlock(slot);
    }
  }

  async #loadCustom(index: number): Promise<DeviceModel> {
    const url = this.#customUrls[index - MODEL_LIST.length];
    if (url === undefined) throw new Error(`no device model ${index} in this worker`);
    return deviceModelOf(await loadModule(url), url);
  }

  #privateMemory(slot: number): Uint8Array {
    const control = this.#devices.control;
    const first = control.get(slot, kControlPrivatePage) * PAGE_SIZE;
    return this.#devices.memory.subarray(first, first + control.get(slot, kControlPrivatePages) * PAGE_SIZE);
  }
}
