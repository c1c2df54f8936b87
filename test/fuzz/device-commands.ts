import fc from 'fast-check';
import { outArb, w } from './domain-commands.js';
import type { Model } from './model.js';
import { type Ref, refArb, resolve, showRef } from './refs.js';
import { makeOut, type OutKind, P, S, Step } from './step.js';
import { FUNCTIONS, type World } from './world.js';

/** A PCI function by index; one past the last is an object that is no function of this platform. */
function functionValue(w: World, index: number): unknown {
  return w.functions[index] ?? { bus: 0, device: 8, function: 0 };
}

class CreateDevice extends Step {
  constructor(
    readonly fn: number,
    readonly withConfig: boolean,
    readonly out: OutKind,
  ) {
    super();
  }

  toString(): string {
    return `CreateDevice(fn ${this.fn}${this.withConfig ? ', config' : ''}, out ${this.out})`;
  }

  protected apply(m: Model, w: World): void {
    const f = m.functions[this.fn];
    const out = makeOut(this.out);
    let expected: number = S.SUCCESS;
    if (f === undefined) expected = P(1);
    else if (!f.behindIommu) expected = S.NOT_FOUND;
    else if (this.withConfig) expected = P(2);
    else if (this.out !== 'ok') expected = P(3);
    else if ([...m.devices.values()].some((d) => d.fn === this.fn)) expected = S.INVALID_PARAMETER;
    this.call(w, 'CreateDevice', expected, [functionValue(w, this.fn), this.withConfig ? { ConfigType: 1 } : null, out]);
    if (expected !== S.SUCCESS) {
      this.untouched(out, 'CreateDevice');
      return;
    }
    const id = m.nextId();
    m.devices.set(id, { id, fn: this.fn, domain: null, reporting: false, registered: null });
    w.devices.set(id, out.value as object);
  }
}

class DeleteDevice extends Step {
  constructor(readonly device: Ref) {
    super();
  }

  toString(): string {
    return `DeleteDevice(${showRef(this.device)})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('device', this.device, m, w);
    const device = id === null ? undefined : m.devices.get(id)!;
    const expected = device === undefined ? P(1) : device.domain !== null || device.registered !== null ? S.IN_USE : S.SUCCESS;
    this.call(w, 'DeleteDevice', expected, [value]);
    if (expected !== S.SUCCESS || device === undefined) return;
    m.devices.delete(device.id);
    m.deadDevices.push(device.id);
    w.dead.set(device.id, w.devices.get(device.id)!);
    w.devices.delete(device.id);
  }
}

class AttachDevice extends Step {
  constructor(
    readonly domain: Ref,
    readonly device: Ref,
  ) {
    super();
  }

  toString(): string {
    return `AttachDeviceEx(${showRef(this.domain)}, ${showRef(this.device)})`;
  }

  protected apply(m: Model, w: World): void {
    const domainRef = resolve('domain', this.domain, m, w);
    const deviceRef = resolve('device', this.device, m, w);
    const domain = domainRef.id === null ? undefined : m.domains.get(domainRef.id)!;
    const device = deviceRef.id === null ? undefined : m.devices.get(deviceRef.id)!;
    let expected: number = S.SUCCESS;
    if (domain === undefined) expected = P(1);
    else if (device === undefined) expected = P(2);
    else if (device.domain !== null) expected = S.INVALID_PARAMETER;
    else if ((m.availableMask(device.fn) & (1 << domain.type)) === 0) expected = S.ACCESS_DENIED;
    this.call(w, 'AttachDeviceEx', expected, [domainRef.value, deviceRef.value]);
    if (expected !== S.SUCCESS || domain === undefined || device === undefined) return;
    device.domain = domain.id;
    domain.devices.add(device.id);
  }
}

class DetachDevice extends Step {
  constructor(readonly device: Ref) {
    super();
  }

  toString(): string {
    return `DetachDeviceEx(${showRef(this.device)})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('device', this.device, m, w);
    const device = id === null ? undefined : m.devices.get(id)!;
    const expected = device === undefined || device.domain === null ? P(1) : S.SUCCESS;
    this.call(w, 'DetachDeviceEx', expected, [value]);
    if (expected !== S.SUCCESS || device === undefined) return;
    m.domains.get(device.domain!)!.devices.delete(device.id);
    device.domain = null;
  }
}

class SetFaultReporting extends Step {
  constructor(
    readonly device: Ref,
    readonly base: 'right' | 'wrong',
    readonly enable: boolean | 0 | 1,
    readonly config: 'handler' | 'none' | 'not-a-function',
  ) {
    super();
  }

  toString(): string {
    return `SetDeviceFaultReportingEx(${showRef(this.device)}, ${this.base} base, ${String(this.enable)}, ${this.config})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('device', this.device, m, w);
    const device = id === null ? undefined : m.devices.get(id)!;
    const inputMappingId = device === undefined ? 0 : w.functions[device.fn]!.inputMappingId;
    const config =
      this.config === 'none' ? null : { FaultHandler: this.config === 'handler' ? w.faultHandler(device?.id ?? -1) : 'handler', FaultContext: device?.id };
    let expected: number = S.SUCCESS;
    if (device === undefined || device.domain === null) expected = P(1);
    else if (this.base === 'wrong') expected = P(2);
    else if (this.enable && this.config !== 'handler') expected = P(4);
    this.call(w, 'SetDeviceFaultReportingEx', expected, [value, this.base === 'right' ? inputMappingId : inputMappingId + 1, this.enable, config]);
    if (expected === S.SUCCESS) device!.reporting = Boolean(this.enable);
  }
}

class RegisterStateChange extends Step {
  constructor(
    readonly callback: number,
    readonly device: Ref,
    readonly fields: number,
  ) {
    super();
  }

  toString(): string {
    return `RegisterInterfaceStateChangeCallback(callback ${this.callback}, ${showRef(this.device)}, AsULONG ${this.fields})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('device', this.device, m, w);
    const device = id === null ? undefined : m.devices.get(id)!;
    let expected: number = S.SUCCESS;
    if (device === undefined) expected = P(3);
    else if ((this.fields & 1) === 0) expected = P(4);
    else if (device.registered !== null) expected = S.UNSUCCESSFUL;
    this.call(w, 'RegisterInterfaceStateChangeCallback', expected, [w.callbacks[this.callback], device?.id, value, { AsULONG: this.fields }]);
    if (expected !== S.SUCCESS || device === undefined) return;
    const mask = m.availableMask(device.fn);
    device.registered = { callback: this.callback, lastMask: mask };
    m.expectedStateChanges.push([device.id, mask]);
  }
}

class UnregisterStateChange extends Step {
  constructor(
    readonly callback: number,
    readonly device: Ref,
  ) {
    super();
  }

  toString(): string {
    return `UnregisterInterfaceStateChangeCallback(callback ${this.callback}, ${showRef(this.device)})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('device', this.device, m, w);
    const device = id === null ? undefined : m.devices.get(id)!;
    const expected = device === undefined || device.registered === null || device.registered.callback !== this.callback ? S.UNSUCCESSFUL : S.SUCCESS;
    this.call(w, 'UnregisterInterfaceStateChangeCallback', expected, [w.callbacks[this.callback], value]);
    if (expected === S.SUCCESS) device!.registered = null;
  }
}

class SetPolicy extends Step {
  constructor(readonly policy: { kernelDmaProtection?: boolean; dmaGuardPolicy?: 0 | 1 | 2; userUnlocked?: boolean }) {
    super();
  }

  toString(): string {
    return `setPolicy(${JSON.stringify(this.policy)})`;
  }

  protected apply(m: Model, w: World): void {
    w.platform.setPolicy(this.policy);
    m.policy = { ...m.policy, ...this.policy };
    // Registered devices whose mask changed hear of it, in creation order.
    for (const device of m.devices.values()) {
      if (device.registered === null) continue;
      const mask = m.availableMask(device.fn);
      if (mask === device.registered.lastMask) continue;
      device.registered.lastMask = mask;
      m.expectedStateChanges.push([device.id, mask]);
    }
  }
}

const fnArb = fc.oneof({ weight: 12, arbitrary: fc.nat(FUNCTIONS.length - 1) }, { weight: 1, arbitrary: fc.constant(FUNCTIONS.length) });
const rare = <T>(usual: T, odd: fc.Arbitrary<T>) => fc.oneof({ weight: 15, arbitrary: fc.constant(usual) }, { weight: 1, arbitrary: odd });

export const deviceCommands: Array<fc.WeightedArbitrary<Step>> = [
  w(
    5,
    fc.tuple(fnArb, rare(false, fc.constant(true)), outArb).map(([fn, config, out]) => new CreateDevice(fn, config, out)),
  ),
  w(
    1,
    refArb.map((ref) => new DeleteDevice(ref)),
  ),
  w(
    6,
    fc.tuple(refArb, refArb).map(([domain, device]) => new AttachDevice(domain, device)),
  ),
  w(
    2,
    refArb.map((ref) => new DetachDevice(ref)),
  ),
  w(
    3,
    fc
      .tuple(
        refArb,
        rare('right' as const, fc.constant('wrong' as const)),
        fc.constantFrom<boolean | 0 | 1>(true, true, false, 1, 0),
        rare('handler' as const, fc.constantFrom('none' as const, 'not-a-function' as const)),
      )
      .map(([device, base, enable, config]) => new SetFaultReporting(device, base, enable, config)),
  ),
  w(
    2,
    fc.tuple(fc.nat(1), refArb, rare(1, fc.constantFrom(0, 2, 3))).map(([callback, device, fields]) => new RegisterStateChange(callback, device, fields)),
  ),
  w(
    1,
    fc.tuple(fc.nat(1), refArb).map(([callback, device]) => new UnregisterStateChange(callback, device)),
  ),
  w(
    2,
    fc
      .record(
        { kernelDmaProtection: fc.boolean(), dmaGuardPolicy: fc.constantFrom(0 as const, 1 as const, 2 as const), userUnlocked: fc.boolean() },
        { requiredKeys: [] },
      )
      .map((policy) => new SetPolicy(policy)),
  ),
];
