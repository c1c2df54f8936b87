import { Errors } from '../base/errors.js';
import { MAX_REGISTER_BYTES } from '../hardware/function-model.js';
import type { DeviceModel } from './device-model.js';

/**
 * A platform's own device models: ES modules that export a DeviceModel as `deviceModel` (or
 * as their default export), loaded by URL on the main thread (bus, registers, doorbells) and
 * in every worker (process). See docs/devices.md.
 */
export function deviceModelOf(module: Record<string, unknown>, url: string): DeviceModel {
  const problem = problemOf(module.deviceModel ?? module.default);
  if (problem !== null) throw Errors.InvalidDeviceModelModule(url, problem);
  return (module.deviceModel ?? module.default) as DeviceModel;
}

/** Why `model` is not a usable DeviceModel, or null. */
function problemOf(model: unknown): string | null {
  if (typeof model !== 'object' || model === null) return 'exports no deviceModel';
  const m = model as Partial<DeviceModel>;
  if (typeof m.name !== 'string' || m.name.length === 0) return 'has no name';
  if (typeof m.process !== 'function' || typeof m.reset !== 'function' || typeof m.isDoorbell !== 'function' || typeof m.privateMemoryBytes !== 'function') {
    return 'lacks process, reset, isDoorbell or privateMemoryBytes';
  }
  const bytes = m.registerBytes;
  const valid =
    bytes === 0 ||
    (Number.isInteger(bytes) && (bytes as number) >= 16 && (bytes as number) <= MAX_REGISTER_BYTES && Number.isInteger(Math.log2(bytes as number)));
  return valid ? null : `has a registerBytes that is not 0 or a power of two in 16..${MAX_REGISTER_BYTES}`;
}
