import type { DeviceModel } from './device-model.js';

/**
 * A platform's own device models: ES modules that export a DeviceModel as `deviceModel` (or
 * as their default export), loaded by URL on the main thread (bus, registers, doorbells) and
 * in every worker (process). See docs/devices.md.
 */
export function deviceModelOf(module: Record<string, unknown>, url: string): DeviceModel {
  const model = (module.deviceModel ?? module.default) as Partial<DeviceModel> | undefined;
  const problem =
    typeof model !== 'object' || model === null
      ? 'exports no deviceModel'
      : typeof model.name !== 'string' || model.name.length === 0
        ? 'has no name'
        : typeof model.process !== 'function' || typeof model.reset !== 'function' || typeof model.isDoorbell !== 'function' || typeof model.privateMemoryBytes !== 'function'
          ? 'lacks process, reset, isDoorbell or privateMemoryBytes'
          : !Number.isInteger(model.registerBytes) || model.registerBytes! < 0 || model.registerBytes! > 16384 || (model.registerBytes! > 0 && !Number.isInteger(Math.log2(model.registerBytes!))) || (model.registerBytes! > 0 && model.registerBytes! < 16)
            ? 'has a registerBytes that is not 0 or a power of two in 16..16384'
            : null;
  if (problem !== null) throw new TypeError(`device model module ${url} ${problem}`);
  return model as DeviceModel;
}
