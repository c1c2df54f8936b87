import t, { type Test } from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IommuDeviceCreationConfigTypeAcpi,
  IommuDeviceCreationConfigTypeDeviceId,
  IommuDeviceCreationConfigTypeNone,
  STATUS_ACCESS_DENIED,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_NOT_FOUND,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type PciFunction,
  type Platform,
  type PlatformOptions,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { buddy, contiguous, domainOf, out, PAGE, platformFor, v2Of } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

const ALL_ARM64 = (1 << DomainTypeTranslate) | (1 << DomainTypePassThrough) | (1 << DomainTypeUnmanaged);
const ALL_X64 = (1 << DomainTypeTranslate) | (1 << DomainTypePassThrough);

function deviceOf(V2: DMA_IOMMU_INTERFACE_V2, fn: PciFunction): IOMMU_DMA_DEVICE {
  const device = out<IOMMU_DMA_DEVICE>();
  if (V2.CreateDevice(fn, null, device) !== STATUS_SUCCESS) throw new Error('CreateDevice');
  return device.value!;
}

/** The domains' summaries (device counts, mappings, tables) must not move across a rejected call. */
function watch(platform: Platform, domains: IOMMU_DMA_DOMAIN[]) {
  const snap = () => ({ tables: platform.pageTablesInUse, domains: domains.map((d) => platform.describeDomain(d)) });
  const before = snap();
  return (t: Test, what: string) => t.strictSame(snap(), before, `${what}: nothing changed`);
}

async function setup(t: Test, options: PlatformOptions = {}) {
  const platform = await platformFor(t, { workers: 0, ...options });
  const V2 = v2Of(platform);
  let next = 1;
  const addFunction = (extra: { externalFacing?: boolean; behindIommu?: boolean } = {}) =>
    platform.bus.addFunction({ bus: 0, device: next++, function: 0, ...extra });
  return { platform, V2, addFunction };
}

t.test('CreateDevice issues a fresh opaque handle per PCI function, distinct from the function', async (t) => {
  const { platform, V2, addFunction } = await setup(t);
  const other = await platformFor(t, { workers: 0 });
  const fns = [addFunction(), addFunction({ externalFacing: true }), platform.bus.addFunction({ bus: 3, device: 31, function: 7 })];
  const handles = fns.map((fn) => {
    const device = out<IOMMU_DMA_DEVICE>();
    t.equal(V2.CreateDevice(fn, null, device), STATUS_SUCCESS);
    t.type(device.value, 'object', 'DmaDeviceOut filled');
    t.not(device.value, fn, 'the handle is not the PCI function');
    return device.value;
  });
  t.equal(new Set(handles).size, 3, 'three distinct handles');
  t.equal(V2.CreateDevice(addFunction(), undefined, out()), STATUS_SUCCESS, 'DeviceConfig undefined is absent too');
  const [pfn] = platform.memory.allocatePages(1);
  const domain = domainOf(V2, DomainTypeTranslate, buddy());
  const check = watch(platform, [domain]);
  const fresh = addFunction();
  const badObjects: Array<[string, unknown]> = [
    ['a plain object', {}],
    ['a spread copy of a PCI function', { ...fresh }],
    ['an object inheriting from a PCI function', Object.create(fresh)],
    ['a DMA device handle', handles[0]],
    ['a domain handle', domain],
    ['a PCI function of another platform', other.bus.addFunction({ bus: 0, device: 1, function: 0 })],
    ['the requester ID', fresh.requesterId],
    ['null', null],
    ['undefined', undefined],
  ];
  for (const [what, pdo] of badObjects) {
    const device = out<IOMMU_DMA_DEVICE>();
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).CreateDevice(pdo, null, device);
    });
    t.equal(status, STATUS_INVALID_PARAMETER_1, what);
    t.strictSame(device, {}, `${what}: DmaDeviceOut untouched`);
    check(t, what);
  }
  const configs: Array<[string, unknown]> = [
    ['an ACPI configuration', { NextConfiguration: null, ConfigType: IommuDeviceCreationConfigTypeAcpi, Acpi: { InputMappingBase: 0, MappingsCount: 1 } }],
    ['a DeviceId configuration', { ConfigType: IommuDeviceCreationConfigTypeDeviceId, DeviceId: {} }],
    ['a None configuration', { ConfigType: IommuDeviceCreationConfigTypeNone }],
    ['an empty object', {}],
    ['0', 0],
  ];
  for (const [what, config] of configs) {
    const device = out<IOMMU_DMA_DEVICE>();
    t.equal(untyped(V2).CreateDevice(fresh, config, device), STATUS_INVALID_PARAMETER_2, `DeviceConfig ${what} for a PCI function`);
    t.strictSame(device, {}, `${what}: DmaDeviceOut untouched`);
  }
  for (const bad of [null, undefined, 1, 'out']) {
    t.equal(untyped(V2).CreateDevice(fresh, null, bad), STATUS_INVALID_PARAMETER_3, `DmaDeviceOut ${String(bad)}`);
  }
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(fresh, null, device), STATUS_SUCCESS, 'none of the rejected calls created a device for the function');
  t.equal(V2.AttachDeviceEx(domain, device.value!), STATUS_SUCCESS);
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), null, null, null, out()), STATUS_SUCCESS);
});

t.test('CreateDevice: not behind the IOMMU is STATUS_NOT_FOUND; a second live device is STATUS_INVALID_PARAMETER', async (t) => {
  const { platform, V2, addFunction } = await setup(t);
  const direct = addFunction({ behindIommu: false });
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(direct, null, device), STATUS_NOT_FOUND, 'not behind the IOMMU');
  t.strictSame(device, {}, 'DmaDeviceOut untouched');
  t.equal(V2.CreateDevice(direct, null, device), STATUS_NOT_FOUND, 'and again');

  const fn = addFunction();
  const first = deviceOf(V2, fn);
  const domain = domainOf(V2, DomainTypeTranslate, buddy());
  t.equal(V2.AttachDeviceEx(domain, first), STATUS_SUCCESS);
  const check = watch(platform, [domain]);
  const second = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(fn, null, second), STATUS_INVALID_PARAMETER, 'a second live DMA device for the function');
  t.strictSame(second, {}, 'DmaDeviceOut untouched');
  check(t, 'second CreateDevice');
  t.equal(V2.DetachDeviceEx(first), STATUS_SUCCESS, 'the first device is still attached');
  t.equal(V2.CreateDevice(fn, null, second), STATUS_INVALID_PARAMETER, 'detached but alive: still refused');
  t.equal(V2.DeleteDevice(first), STATUS_SUCCESS);
  t.equal(V2.CreateDevice(fn, null, second), STATUS_SUCCESS, 'after DeleteDevice the function can get a new device');
  t.not(second.value, first, 'a new handle');
  t.equal(V2.AttachDeviceEx(domain, first), STATUS_INVALID_PARAMETER_2, 'the old handle stays dead');
  t.equal(V2.AttachDeviceEx(domain, second.value!), STATUS_SUCCESS, 'the new one works');
});

t.test('DeleteDevice: unknown handle _1; attached STATUS_RESOURCE_IN_USE; a deleted handle is dead everywhere', async (t) => {
  const { platform, V2, addFunction } = await setup(t);
  const fn = addFunction();
  const device = deviceOf(V2, fn);
  const domain = domainOf(V2, DomainTypeTranslate, buddy());
  t.equal(V2.AttachDeviceEx(domain, device), STATUS_SUCCESS);
  const deleted = deviceOf(V2, addFunction());
  t.equal(V2.DeleteDevice(deleted), STATUS_SUCCESS);
  const check = watch(platform, [domain]);
  const bad: Array<[string, unknown]> = [
    ['a spread copy', { ...device }],
    ['a look-alike', { kind: 'IOMMU_DMA_DEVICE', id: device.id }],
    ['a deleted device', deleted],
    ['a domain handle', domain],
    ['the PCI function', fn],
    ['null', null],
    ['undefined', undefined],
  ];
  for (const [what, handle] of bad) {
    t.equal(untyped(V2).DeleteDevice(handle), STATUS_INVALID_PARAMETER_1, what);
    check(t, what);
  }
  t.equal(V2.DeleteDevice(device), STATUS_RESOURCE_IN_USE, 'still attached');
  check(t, 'DeleteDevice while attached');
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS, 'the refused delete left it attached');
  const calls: unknown[] = [];
  const callback = (change: unknown) => calls.push(change);
  t.equal(V2.RegisterInterfaceStateChangeCallback(callback, null, device, { AsULONG: 1 }), STATUS_SUCCESS);
  t.equal(V2.DeleteDevice(device), STATUS_RESOURCE_IN_USE, 'a state-change callback is registered');
  t.equal(V2.RegisterInterfaceStateChangeCallback(callback, null, device, { AsULONG: 1 }), STATUS_UNSUCCESSFUL, 'the refused delete kept the registration');
  t.equal(V2.UnregisterInterfaceStateChangeCallback(callback, device), STATUS_SUCCESS);
  const registrations = calls.length;
  t.equal(V2.DeleteDevice(device), STATUS_SUCCESS, 'detached and unregistered: deleted');
  t.equal(V2.UnregisterInterfaceStateChangeCallback(callback, device), STATUS_UNSUCCESSFUL, 'nothing is registered for a deleted device');
  platform.setPolicy({ dmaGuardPolicy: 0 });
  t.equal(calls.length, registrations, 'no callback after unregistering');
  t.match(platform.describeDomain(domain), { devices: 0 });
  const mask = { value: 12345 };
  t.equal(V2.QueryAvailableDomainTypes(device, mask), undefined);
  t.same(mask, { value: 12345 }, 'QueryAvailableDomainTypes leaves the output alone');
  t.equal(V2.AttachDeviceEx(domain, device), STATUS_INVALID_PARAMETER_2, 'AttachDeviceEx');
  t.equal(V2.DetachDeviceEx(device), STATUS_INVALID_PARAMETER_1, 'DetachDeviceEx');
  t.equal(V2.DeleteDevice(device), STATUS_INVALID_PARAMETER_1, 'DeleteDevice twice');
  t.match(platform.describeDomain(domain), { devices: 0 }, 'nothing attached by the dead handle');
});

t.test('AttachDeviceEx: bad handles by position, one domain per device, several devices per domain', async (t) => {
  const { platform, V2, addFunction } = await setup(t);
  const translate = domainOf(V2, DomainTypeTranslate, buddy());
  const other = domainOf(V2, DomainTypeTranslate, null);
  const deletedDomain = domainOf(V2, DomainTypeTranslate);
  t.equal(V2.DeleteDomain(deletedDomain), STATUS_SUCCESS);
  const fn = addFunction();
  const device = deviceOf(V2, fn);
  const deletedDevice = deviceOf(V2, addFunction());
  t.equal(V2.DeleteDevice(deletedDevice), STATUS_SUCCESS);
  const check = watch(platform, [translate, other]);
  const cases: Array<[string, unknown, unknown, number]> = [
    ['domain: a spread copy', { ...translate }, device, STATUS_INVALID_PARAMETER_1],
    ['domain: a deleted domain', deletedDomain, device, STATUS_INVALID_PARAMETER_1],
    ['domain: a device handle', device, device, STATUS_INVALID_PARAMETER_1],
    ['domain: null', null, device, STATUS_INVALID_PARAMETER_1],
    ['both bad', null, null, STATUS_INVALID_PARAMETER_1],
    ['device: a spread copy', translate, { ...device }, STATUS_INVALID_PARAMETER_2],
    ['device: a deleted device', translate, deletedDevice, STATUS_INVALID_PARAMETER_2],
    ['device: a domain handle', translate, other, STATUS_INVALID_PARAMETER_2],
    ['device: the PCI function', translate, fn, STATUS_INVALID_PARAMETER_2],
    ['device: undefined', translate, undefined, STATUS_INVALID_PARAMETER_2],
  ];
  for (const [what, domain, dev, expected] of cases) {
    t.equal(untyped(V2).AttachDeviceEx(domain, dev), expected, what);
    check(t, what);
  }
  t.equal(V2.DetachDeviceEx(device), STATUS_INVALID_PARAMETER_1, 'no rejected call attached the device');

  t.equal(V2.AttachDeviceEx(translate, device), STATUS_SUCCESS);
  t.match(platform.describeDomain(translate), { devices: 1 });
  const attached = watch(platform, [translate, other]);
  t.equal(V2.AttachDeviceEx(translate, device), STATUS_INVALID_PARAMETER, 'already attached to the same domain');
  attached(t, 'attach twice');
  t.equal(V2.AttachDeviceEx(other, device), STATUS_INVALID_PARAMETER, 'already attached to another domain');
  attached(t, 'attach elsewhere');
  const peers = [deviceOf(V2, addFunction()), deviceOf(V2, addFunction({ externalFacing: true }))];
  for (const peer of peers) t.equal(V2.AttachDeviceEx(translate, peer), STATUS_SUCCESS, 'another device shares the domain');
  t.match(platform.describeDomain(translate), { devices: 3 });
  t.match(platform.describeDomain(other), { devices: 0 });
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
  t.equal(V2.AttachDeviceEx(other, device), STATUS_SUCCESS, 'after detaching, it can move');
  t.match(platform.describeDomain(translate), { devices: 2 });
  t.match(platform.describeDomain(other), { devices: 1 });
  for (const type of [DomainTypePassThrough, DomainTypeUnmanaged]) {
    const dev = deviceOf(V2, addFunction());
    t.equal(V2.AttachDeviceEx(domainOf(V2, type), dev), STATUS_SUCCESS, `arm64 default policy: type ${type} is available`);
  }
});

t.test('AttachDeviceEx answers STATUS_ACCESS_DENIED for a type the policy keeps the device out of', async (t) => {
  const cases: Array<[string, PlatformOptions, boolean]> = [
    ['block all', { dmaGuardPolicy: 0 }, false],
    ['after unlock, still locked', { dmaGuardPolicy: 1, userUnlocked: false }, false],
    ['after unlock, unlocked', { dmaGuardPolicy: 1, userUnlocked: true }, true],
    ['allow all, locked', { dmaGuardPolicy: 2, userUnlocked: false }, true],
    ['no Kernel DMA Protection, block all', { kernelDmaProtection: false, dmaGuardPolicy: 0, userUnlocked: false }, true],
  ];
  for (const [what, options, external] of cases) {
    const { platform, V2, addFunction } = await setup(t, options);
    const passThrough = domainOf(V2, DomainTypePassThrough);
    const translate = domainOf(V2, DomainTypeTranslate, buddy());
    const outside = deviceOf(V2, addFunction({ externalFacing: true }));
    const inside = deviceOf(V2, addFunction());
    const check = watch(platform, [passThrough, translate]);
    t.equal(V2.AttachDeviceEx(passThrough, outside), external ? STATUS_SUCCESS : STATUS_ACCESS_DENIED, `${what}: external-facing device to PassThrough`);
    if (!external) {
      check(t, what);
      t.equal(V2.DetachDeviceEx(outside), STATUS_INVALID_PARAMETER_1, `${what}: the denied device is not attached`);
      t.equal(V2.AttachDeviceEx(translate, outside), STATUS_SUCCESS, `${what}: Translate is always available`);
    }
    t.equal(V2.AttachDeviceEx(passThrough, inside), STATUS_SUCCESS, `${what}: an internal device may use PassThrough`);
  }
  const { platform, V2, addFunction } = await setup(t, { dmaGuardPolicy: 1, userUnlocked: false });
  const passThrough = domainOf(V2, DomainTypePassThrough);
  const device = deviceOf(V2, addFunction({ externalFacing: true }));
  t.equal(V2.AttachDeviceEx(passThrough, device), STATUS_ACCESS_DENIED, 'locked');
  platform.setPolicy({ userUnlocked: true });
  t.equal(V2.AttachDeviceEx(passThrough, device), STATUS_SUCCESS, 'the policy changed at run time: unlocked');
});

t.test('DetachDeviceEx: _1 unless attached; mappings stay with the domain', async (t) => {
  const { platform, V2, addFunction } = await setup(t);
  const fn = addFunction();
  const device = deviceOf(V2, fn);
  const domain = domainOf(V2, DomainTypeTranslate, buddy());
  const [pfn] = platform.memory.allocatePages(1);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), null, null, null, logical), STATUS_SUCCESS);
  const check = watch(platform, [domain]);
  for (const [what, handle] of [
    ['never attached', device],
    ['a spread copy', { ...device }],
    ['the PCI function', fn],
    ['a domain handle', domain],
    ['null', null],
  ] as const) {
    t.equal(untyped(V2).DetachDeviceEx(handle), STATUS_INVALID_PARAMETER_1, what);
    check(t, what);
  }
  t.equal(V2.AttachDeviceEx(domain, device), STATUS_SUCCESS);
  t.equal(V2.DetachDeviceEx({ ...device }), STATUS_INVALID_PARAMETER_1, 'a copy of an attached device');
  t.match(platform.describeDomain(domain), { devices: 1 }, 'still attached');
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
  check(t, 'attach then detach');
  t.same(
    platform.inspectTranslation(domain, logical.value! + 1),
    { physicalAddress: pfn! * PAGE + 1, access: IOMMU_ACCESS_READ, leafBytes: PAGE },
    'the mapping stayed',
  );
  t.equal(V2.DetachDeviceEx(device), STATUS_INVALID_PARAMETER_1, 'detach twice');
});

t.test('QueryAvailableDomainTypes writes the default-policy mask and nothing else', async (t) => {
  for (const [arch, expected] of [
    ['arm64', ALL_ARM64],
    ['x64', ALL_X64],
  ] as const) {
    const { V2, addFunction } = await setup(t, { arch });
    for (const externalFacing of [false, true]) {
      const device = deviceOf(V2, addFunction({ externalFacing }));
      const mask = out<number>();
      t.equal(V2.QueryAvailableDomainTypes(device, mask), undefined, 'returns nothing');
      t.equal(mask.value, expected, `${arch}, ${externalFacing ? 'external' : 'internal'}: 0b${expected.toString(2)}`);
      for (const type of [DomainTypeTranslate, DomainTypePassThrough, DomainTypeUnmanaged]) {
        if ((expected & (1 << type)) === 0) continue;
        const domain = domainOf(V2, type);
        t.equal(V2.AttachDeviceEx(domain, device), STATUS_SUCCESS, `${arch}: the mask's type ${type} can be attached`);
        t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
      }
    }
    const device = deviceOf(V2, addFunction());
    for (const [what, handle] of [
      ['a spread copy', { ...device }],
      ['null', null],
      ['a PCI function', addFunction()],
    ] as const) {
      const mask = { value: -7 };
      t.doesNotThrow(() => untyped(V2).QueryAvailableDomainTypes(handle, mask));
      t.same(mask, { value: -7 }, `${arch}: ${what}: AvailableDomains untouched`);
    }
    t.doesNotThrow(() => untyped(V2).QueryAvailableDomainTypes(device, null), 'a null AvailableDomains does not throw');
  }
});
