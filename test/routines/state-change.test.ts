import t from 'tap';
import {
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type IOMMU_INTERFACE_STATE_CHANGE,
  type PciFunction,
  type Platform,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { ok, out, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/** RegisterInterfaceStateChangeCallback / UnregisterInterfaceStateChangeCallback. */

const ALL = 0b111; // Translate | PassThrough | Unmanaged (arm64, PassThrough allowed)
const LOCKED = 0b101; // Translate | Unmanaged
const FIELDS = Object.freeze({ AsULONG: 1 });

interface Call {
  change: IOMMU_INTERFACE_STATE_CHANGE;
  context: unknown;
  args: number;
}

/** A callback that records its calls (the state is copied: the callee must not rely on it afterwards). */
function recorder(): { callback: (...args: unknown[]) => void; calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    callback: (...args: unknown[]) => calls.push({ change: structuredClone(args[0]) as IOMMU_INTERFACE_STATE_CHANGE, context: args[1], args: args.length }),
  };
}

function change(mask: number) {
  return { PresentFields: { AsULONG: 1 }, AvailableDomainTypes: mask };
}

function deviceOn(platform: Platform, V2: DMA_IOMMU_INTERFACE_V2, device: number, externalFacing = true): { fn: PciFunction; device: IOMMU_DMA_DEVICE } {
  const fn = platform.bus.addFunction({ bus: 0, device, function: 0, externalFacing });
  const handle = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(fn, null, handle), 'CreateDevice');
  return { fn, device: handle.value! };
}

t.test('Register calls the callback once, synchronously, before returning: PresentFields 1, the current mask, the Context', async (t) => {
  const platform = await platformFor(t, { dmaGuardPolicy: 0 });
  const V2 = v2Of(platform);
  const external = deviceOn(platform, V2, 1, true).device;
  const internal = deviceOn(platform, V2, 2, false).device;
  const context = { driver: 'mine' };
  let returned = false;
  const seen: Array<[boolean, unknown, unknown]> = [];
  const callback = (state: IOMMU_INTERFACE_STATE_CHANGE, ctx: unknown) => seen.push([returned, structuredClone(state), ctx]);
  const status = V2.RegisterInterfaceStateChangeCallback(callback, context, external, FIELDS);
  returned = true;
  t.equal(status, STATUS_SUCCESS);
  t.equal(seen.length, 1, 'called exactly once');
  t.equal(seen[0]![0], false, 'before Register returned');
  t.strictSame(seen[0]![1], change(LOCKED), 'with the current mask of the external device (policy 0: no PassThrough)');
  t.equal(seen[0]![2], context, 'and the Context object itself');

  for (const [what, ctx] of [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'ctx'],
  ] as const) {
    const { device } = deviceOn(platform, V2, 10 + ['undefined', 'null', 'a number', 'a string'].indexOf(what), false);
    const r = recorder();
    t.equal(V2.RegisterInterfaceStateChangeCallback(r.callback, ctx, device, FIELDS), STATUS_SUCCESS);
    t.strictSame(r.calls, [{ change: change(ALL), context: ctx, args: 2 }], `Context ${what} is passed through`);
  }
  const extraBits = recorder();
  t.equal(
    V2.RegisterInterfaceStateChangeCallback(extraBits.callback, null, internal, { AsULONG: 0xffffffff }),
    STATUS_SUCCESS,
    'bit 0 set among others is enough',
  );
  t.strictSame(
    extraBits.calls.map((c) => c.change),
    [change(ALL)],
    'PresentFields is still only bit 0',
  );
});

t.test('one registration per device: a second one is STATUS_UNSUCCESSFUL and the first stays in charge', async (t) => {
  const platform = await platformFor(t, { dmaGuardPolicy: 1, userUnlocked: true });
  const V2 = v2Of(platform);
  const { device } = deviceOn(platform, V2, 1);
  const first = recorder();
  const second = recorder();
  t.equal(V2.RegisterInterfaceStateChangeCallback(first.callback, 'first', device, FIELDS), STATUS_SUCCESS);
  t.equal(V2.RegisterInterfaceStateChangeCallback(second.callback, 'second', device, FIELDS), STATUS_UNSUCCESSFUL, 'another callback');
  t.equal(V2.RegisterInterfaceStateChangeCallback(first.callback, 'again', device, FIELDS), STATUS_UNSUCCESSFUL, 'the same callback again');
  t.strictSame(second.calls, [], 'a refused registration is never called, not even once');
  platform.setPolicy({ userUnlocked: false });
  t.strictSame(
    first.calls,
    [
      { change: change(ALL), context: 'first', args: 2 },
      { change: change(LOCKED), context: 'first', args: 2 },
    ],
    'the first registration heard the change with its own Context',
  );
  t.equal(V2.UnregisterInterfaceStateChangeCallback(second.callback, device), STATUS_UNSUCCESSFUL, 'the refused one was never registered');

  const other = deviceOn(platform, V2, 2).device;
  t.equal(V2.RegisterInterfaceStateChangeCallback(first.callback, 'other', other, FIELDS), STATUS_SUCCESS, 'the same callback may serve another device');
});

t.test('bad StateFields, callback or device are rejected at their positions; nothing is registered or called', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const { fn, device } = deviceOn(platform, V2, 1);
  const gone = deviceOn(platform, V2, 2).device;
  ok(V2.DeleteDevice(gone), 'DeleteDevice');
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(0, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  const r = recorder();
  const cases: Array<[string, unknown, unknown, unknown, number]> = [
    ['StateFields.AsULONG 0', r.callback, device, { AsULONG: 0 }, STATUS_INVALID_PARAMETER_4],
    ['StateFields.AsULONG 2', r.callback, device, { AsULONG: 2 }, STATUS_INVALID_PARAMETER_4],
    ['StateFields.AsULONG 0xfffffffe', r.callback, device, { AsULONG: 0xfffffffe }, STATUS_INVALID_PARAMETER_4],
    ['StateFields {}', r.callback, device, {}, STATUS_INVALID_PARAMETER_4],
    ['StateFields null', r.callback, device, null, STATUS_INVALID_PARAMETER_4],
    ['callback null', null, device, FIELDS, STATUS_INVALID_PARAMETER_1],
    ['callback undefined', undefined, device, FIELDS, STATUS_INVALID_PARAMETER_1],
    ['callback an object', { call: r.callback }, device, FIELDS, STATUS_INVALID_PARAMETER_1],
    ['callback a string', 'callback', device, FIELDS, STATUS_INVALID_PARAMETER_1],
    ['a deleted device', r.callback, gone, FIELDS, STATUS_INVALID_PARAMETER_3],
    ['a copy of a device handle', r.callback, { ...device }, FIELDS, STATUS_INVALID_PARAMETER_3],
    ['the PCI function instead of the DMA device', r.callback, fn, FIELDS, STATUS_INVALID_PARAMETER_3],
    ['a domain handle', r.callback, domain.value, FIELDS, STATUS_INVALID_PARAMETER_3],
    ['null device', r.callback, null, FIELDS, STATUS_INVALID_PARAMETER_3],
  ];
  for (const [what, callback, dev, fields, expected] of cases) {
    t.equal(untyped(V2).RegisterInterfaceStateChangeCallback(callback, null, dev, fields), expected, what);
  }
  t.strictSame(r.calls, [], 'no rejected registration called anything');
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.strictSame(r.calls, [], 'nor does it hear policy changes');
  t.equal(V2.DeleteDevice(device), STATUS_SUCCESS, 'no registration holds the device');
});

t.test('Unregister needs the registered (callback, device) pair; afterwards no call starts', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const { device } = deviceOn(platform, V2, 1);
  const bare = deviceOn(platform, V2, 2).device;
  const gone = deviceOn(platform, V2, 3).device;
  ok(V2.DeleteDevice(gone), 'DeleteDevice');
  const r = recorder();
  const stranger = recorder();
  ok(V2.RegisterInterfaceStateChangeCallback(r.callback, null, device, FIELDS), 'Register');
  for (const [what, callback, dev] of [
    ['another callback on the registered device', stranger.callback, device],
    ['the callback on a device without registration', r.callback, bare],
    ['a deleted device', r.callback, gone],
    ['an unknown device object', r.callback, {}],
    ['a copy of the device handle', r.callback, { ...device }],
    ['null device', r.callback, null],
    ['null callback', null, device],
  ] as const) {
    t.equal(untyped(V2).UnregisterInterfaceStateChangeCallback(callback, dev), STATUS_UNSUCCESSFUL, what);
  }
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(r.calls.length, 2, 'the failed unregistrations left the registration in place');

  t.equal(V2.UnregisterInterfaceStateChangeCallback(r.callback, device), STATUS_SUCCESS);
  t.equal(V2.UnregisterInterfaceStateChangeCallback(r.callback, device), STATUS_UNSUCCESSFUL, 'twice');
  platform.setPolicy({ dmaGuardPolicy: 2 });
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(r.calls.length, 2, 'no call after unregistering');

  t.equal(V2.RegisterInterfaceStateChangeCallback(stranger.callback, 'new', device, FIELDS), STATUS_SUCCESS, 'the device can register again');
  t.strictSame(stranger.calls, [{ change: change(LOCKED), context: 'new', args: 2 }], 'with a fresh immediate call');
});

t.test('an Unregister made from inside a callback holds at once, even within the same policy change', async (t) => {
  const errors: unknown[] = [];
  const platform = await platformFor(t, { onCallbackError: (error) => errors.push(error) });
  const V2 = v2Of(platform);
  const a = deviceOn(platform, V2, 1).device;
  const b = deviceOn(platform, V2, 2).device;
  const heard: string[] = [];
  let armed = false;
  const callbackA = () => {
    heard.push('a');
    if (armed) heard.push(`a unregisters b: ${V2.UnregisterInterfaceStateChangeCallback(callbackB, b)}`);
  };
  const callbackB = () => {
    heard.push('b');
    if (armed) heard.push(`b unregisters a: ${V2.UnregisterInterfaceStateChangeCallback(callbackA, a)}`);
  };
  ok(V2.RegisterInterfaceStateChangeCallback(callbackA, null, a, FIELDS), 'Register a');
  ok(V2.RegisterInterfaceStateChangeCallback(callbackB, null, b, FIELDS), 'Register b');
  heard.length = 0;
  armed = true;
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(heard.length, 2, `exactly one of the two was called: ${JSON.stringify(heard)}`);
  t.match(heard[1], / unregisters [ab]: 0$/, 'and its Unregister succeeded');
  platform.setPolicy({ dmaGuardPolicy: 2 });
  t.equal(heard.filter((h) => h.length === 1).length, 2, 'afterwards only the surviving registration is called');

  const c = deviceOn(platform, V2, 3).device;
  let calls = 0;
  const selfRemoving = () => {
    calls++;
    if (calls === 2) V2.UnregisterInterfaceStateChangeCallback(selfRemoving, c);
  };
  ok(V2.RegisterInterfaceStateChangeCallback(selfRemoving, null, c, FIELDS), 'Register c');
  platform.setPolicy({ dmaGuardPolicy: 0 });
  platform.setPolicy({ dmaGuardPolicy: 2 });
  t.equal(calls, 2, 'a callback can unregister itself');
  t.strictSame(errors, [], 'no callback and no part of viommu threw along the way');
  t.equal(V2.DeleteDevice(c), STATUS_SUCCESS, 'and its device can go');
});

t.test('DeleteDevice is refused while a callback is registered, and succeeds after Unregister', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const { fn, device } = deviceOn(platform, V2, 1);
  const r = recorder();
  ok(V2.RegisterInterfaceStateChangeCallback(r.callback, null, device, FIELDS), 'Register');
  t.equal(V2.DeleteDevice(device), STATUS_RESOURCE_IN_USE);
  const mask = out<number>();
  V2.QueryAvailableDomainTypes(device, mask);
  t.equal(mask.value, ALL, 'the device is still alive');
  t.equal(V2.CreateDevice(fn, null, out()), STATUS_INVALID_PARAMETER, 'and still owns its function');
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(r.calls.length, 2, 'and still registered');
  ok(V2.UnregisterInterfaceStateChangeCallback(r.callback, device), 'Unregister');
  t.equal(V2.DeleteDevice(device), STATUS_SUCCESS);
  t.equal(V2.UnregisterInterfaceStateChangeCallback(r.callback, device), STATUS_UNSUCCESSFUL, 'a deleted device has no registration');
});

t.test('a callback that throws breaks nothing: the error goes to onCallbackError, registrations and other callbacks carry on', async (t) => {
  const errors: unknown[] = [];
  const platform = await platformFor(t, { onCallbackError: (error) => errors.push(error) });
  const V2 = v2Of(platform);
  const thrower = deviceOn(platform, V2, 1).device;
  const quiet = deviceOn(platform, V2, 2).device;
  const boom = new Error('driver bug');
  let thrown = 0;
  const throwing = () => {
    thrown++;
    throw thrown === 2 ? 'a string, not an Error' : boom;
  };
  const r = recorder();
  t.equal(V2.RegisterInterfaceStateChangeCallback(throwing, null, thrower, FIELDS), STATUS_SUCCESS, 'Register succeeds although the immediate call threw');
  t.strictSame(errors, [boom], 'the error reached onCallbackError');
  t.equal(V2.RegisterInterfaceStateChangeCallback(r.callback, null, quiet, FIELDS), STATUS_SUCCESS);

  t.doesNotThrow(() => platform.setPolicy({ dmaGuardPolicy: 0 }), 'setPolicy does not throw');
  t.equal(thrown, 2);
  t.strictSame(errors, [boom, 'a string, not an Error'], 'whatever was thrown is reported as is');
  t.strictSame(
    r.calls.map((c) => c.change),
    [change(ALL), change(LOCKED)],
    'the other device heard the change',
  );
  t.strictSame(platform.policy.dmaGuardPolicy, 0, 'the policy change took effect');
  t.doesNotThrow(() => platform.setPolicy({ dmaGuardPolicy: 2 }));
  t.equal(thrown, 3, 'the throwing callback stays registered and is called on the next change');
  t.equal(r.calls.length, 3);

  t.equal(V2.DeleteDevice(thrower), STATUS_RESOURCE_IN_USE, 'its registration still holds the device');
  t.equal(V2.UnregisterInterfaceStateChangeCallback(throwing, thrower), STATUS_SUCCESS);
  t.equal(V2.DeleteDevice(thrower), STATUS_SUCCESS);
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(thrown, 3, 'gone once unregistered');
  t.equal(errors.length, 3);
});
