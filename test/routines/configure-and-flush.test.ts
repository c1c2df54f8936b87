import t from 'tap';
import type { Test } from 'tap';
import {
  DomainConfigurationArm64,
  DomainConfigurationInvalid,
  DomainConfigurationX64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_NOT_IMPLEMENTED,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type PciFunction,
  type Platform,
  type IOMMU_DMA_DOMAIN_TYPE,
} from '../../machine/index.js';
import { internalsOf } from '../../machine/platform.js';
import { contiguous, ok, out, PAGE, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/**
 * ConfigureDomain, the ASID pool of unmanaged domains, FlushDomain and FlushDomainByVaList, and the
 * parameter rules of SetDeviceFaultReportingEx (control plane only; delivery is tested with workers).
 */

function createDomain(V2: DMA_IOMMU_INTERFACE_V2, type: IOMMU_DMA_DOMAIN_TYPE): IOMMU_DMA_DOMAIN {
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(type, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  return domain.value!;
}

/**
 * ARM64 stage-1 tables in guest RAM for a 30-bit input space (walk starts at level 2):
 * logical page 1 -> `target`. Returns Ttbr0.
 */
function arm64Tables(platform: Platform, target: number): number {
  const [level2, level3] = platform.memory.allocatePages(2);
  platform.memory.fill(level2! * PAGE, PAGE, 0);
  platform.memory.fill(level3! * PAGE, PAGE, 0);
  platform.memory.writeU64(level2! * PAGE, level3! * PAGE + 0b11); // table descriptor
  platform.memory.writeU64(level3! * PAGE + 8, target * PAGE + 0x400 + 0b11); // page descriptor, AF set
  return level2! * PAGE;
}

function arm64(Ttbr0: number, InputSize0 = 30, TranslationEnabled = true) {
  return { Type: DomainConfigurationArm64, Arm64: { Ttbr0, InputSize0, TranslationEnabled } };
}

const PROBES = [0, 0x1000, 0x1abc, 0x2000, 0x20_0000];

function view(platform: Platform, domain: IOMMU_DMA_DOMAIN) {
  return { summary: platform.describeDomain(domain), translations: PROBES.map((address) => platform.inspectTranslation(domain, address)) };
}

function rejected(t: Test, platform: Platform, domain: IOMMU_DMA_DOMAIN, call: () => number, expected: number, what: string): void {
  const before = view(platform, domain);
  t.equal(call(), expected, what);
  t.strictSame(view(platform, domain), before, `${what}: nothing changed`);
}

t.test('ConfigureDomain installs the guest tables; until then every access faults; reconfiguring takes effect', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, DomainTypeUnmanaged);
  t.strictSame(
    view(platform, domain).translations,
    PROBES.map(() => ({ faultType: TranslationFault })),
    'unconfigured: TranslationFault everywhere',
  );

  const [first, second] = platform.memory.allocatePages(2);
  const ttbrA = arm64Tables(platform, first!);
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrA)), STATUS_SUCCESS);
  t.strictSame(platform.inspectTranslation(domain, 0x1abc), { physicalAddress: first! * PAGE + 0xabc, access: 3, leafBytes: PAGE });
  t.strictSame(platform.inspectTranslation(domain, 0x2000), { faultType: TranslationFault }, 'only page 1 is mapped');

  const ttbrB = arm64Tables(platform, second!);
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrB)), STATUS_SUCCESS, 'reconfiguring is allowed');
  t.strictSame(platform.inspectTranslation(domain, 0x1abc), { physicalAddress: second! * PAGE + 0xabc, access: 3, leafBytes: PAGE }, 'the new tables are used');
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrB, 30, false)), STATUS_SUCCESS, 'TranslationEnabled false');
  t.strictSame(platform.inspectTranslation(domain, 0x20_0123), { physicalAddress: 0x20_0123, access: 3, leafBytes: PAGE }, 'accesses bypass translation');
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrA, 48)), STATUS_SUCCESS, 'InputSize0 48 is in range');
  t.strictSame(
    platform.inspectTranslation(domain, 0x1abc),
    { faultType: TranslationFault },
    'a 48-bit walk starts at level 0 and finds no page at 0x1000 in these tables',
  );
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrA, 25)), STATUS_SUCCESS, 'InputSize0 25 is in range');
  t.strictSame(
    platform.inspectTranslation(domain, 0x1abc),
    { physicalAddress: first! * PAGE + 0xabc, access: 3, leafBytes: PAGE },
    'a 25-bit walk starts at level 2 again',
  );
  t.strictSame(platform.inspectTranslation(domain, 2 ** 25 + 0x1abc), { faultType: TranslationFault }, 'and stops at 2^25');
  t.equal(V2.ConfigureDomain(domain, arm64(platform.memory.size - PAGE)), STATUS_SUCCESS, 'the last page of guest memory is inside it');
  t.equal(V2.ConfigureDomain(domain, arm64(ttbrA)), STATUS_SUCCESS);
  t.strictSame(platform.inspectTranslation(domain, 0x1abc), { physicalAddress: first! * PAGE + 0xabc, access: 3, leafBytes: PAGE }, 'back to the first tables');
});

t.test('ConfigureDomain rejects other domain types, bad types, X64, and bad ARM64 fields, changing nothing', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, DomainTypeUnmanaged);
  const [target] = platform.memory.allocatePages(1);
  const ttbr = arm64Tables(platform, target!);
  ok(V2.ConfigureDomain(domain, arm64(ttbr)), 'ConfigureDomain');
  const deleted = createDomain(V2, DomainTypeUnmanaged);
  ok(V2.DeleteDomain(deleted), 'DeleteDomain');

  for (const [what, handle] of [
    ['a Translate domain', createDomain(V2, DomainTypeTranslate)],
    ['a PassThrough domain', createDomain(V2, DomainTypePassThrough)],
    ['a deleted unmanaged domain', deleted],
    ['a copy of the handle', { ...domain }],
    ['null', null],
  ] as const) {
    rejected(t, platform, domain, () => untyped(V2).ConfigureDomain(handle, arm64(ttbr)), STATUS_INVALID_PARAMETER_1, what);
  }
  for (const Type of [DomainConfigurationInvalid, DomainConfigurationInvalid + 1, -1, 0.5, '0', null]) {
    rejected(t, platform, domain, () => untyped(V2).ConfigureDomain(domain, { ...arm64(ttbr), Type }), STATUS_INVALID_PARAMETER_2, `Type ${String(Type)}`);
  }
  rejected(
    t,
    platform,
    domain,
    () => V2.ConfigureDomain(domain, { Type: DomainConfigurationX64, X64: { FirstLevelPageTableRoot: ttbr, TranslationEnabled: true } }),
    STATUS_NOT_SUPPORTED,
    'DomainConfigurationX64',
  );
  for (const Ttbr0 of [ttbr + 8, ttbr + PAGE / 2, platform.memory.size, platform.memory.size + PAGE, 2 ** 40, -PAGE, 1.5, NaN, '4096']) {
    rejected(t, platform, domain, () => V2.ConfigureDomain(domain, arm64(Ttbr0 as number)), STATUS_INVALID_PARAMETER_2, `Ttbr0 ${String(Ttbr0)}`);
  }
  for (const InputSize0 of [24, 49, 0, 64, 30.5, -30]) {
    rejected(t, platform, domain, () => V2.ConfigureDomain(domain, arm64(ttbr, InputSize0)), STATUS_INVALID_PARAMETER_2, `InputSize0 ${InputSize0}`);
  }
  rejected(t, platform, domain, () => untyped(V2).ConfigureDomain(domain, { Type: DomainConfigurationArm64 }), STATUS_INVALID_PARAMETER_2, 'no Arm64 member');
  rejected(t, platform, domain, () => untyped(V2).ConfigureDomain(domain, null), STATUS_INVALID_PARAMETER_2, 'no Configuration');
});

t.test("arch 'x64' has no unmanaged domains", async (t) => {
  const platform = await platformFor(t, { arch: 'x64' });
  const V2 = v2Of(platform);
  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, domain), STATUS_NOT_SUPPORTED);
  t.strictSame(domain, {}, 'no domain');
  const translate = createDomain(V2, DomainTypeTranslate);
  t.equal(V2.ConfigureDomain(translate, arm64(0)), STATUS_INVALID_PARAMETER_1, 'ConfigureDomain has no domain to take');
});

t.test('256 ASIDs: the 257th unmanaged domain is STATUS_INSUFFICIENT_RESOURCES; deleting one frees its ASID', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domains: IOMMU_DMA_DOMAIN[] = [];
  const statuses = new Set<number>();
  for (let i = 0; i < 256; i++) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    statuses.add(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, domain));
    domains.push(domain.value!);
  }
  t.strictSame([...statuses], [STATUS_SUCCESS], '256 unmanaged domains');
  const asids = domains.map((domain) => platform.describeDomain(domain)!.asid);
  t.equal(new Set(asids).size, 256, 'each with its own ASID');
  t.ok(
    asids.every((asid) => Number.isInteger(asid) && asid >= 0),
    'ASIDs are non-negative integers',
  );

  const refused = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, refused), STATUS_INSUFFICIENT_RESOURCES, 'the 257th');
  t.strictSame(refused, {}, 'no domain handed out');
  t.equal(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, out()), STATUS_SUCCESS, 'other domain types need no ASID');
  t.equal(V2.CreateDomainEx(DomainTypePassThrough, ZERO_FLAGS, null, null, out()), STATUS_SUCCESS);

  const victim = domains[100]!;
  const freed = platform.describeDomain(victim)!.asid;
  t.equal(V2.DeleteDomain(victim), STATUS_SUCCESS);
  const replacement = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, replacement), STATUS_SUCCESS, 'a deleted domain gives its ASID back');
  t.equal(platform.describeDomain(replacement.value!)!.asid, freed, 'the new domain has the freed ASID');
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, out()), STATUS_INSUFFICIENT_RESOURCES, 'and the pool is empty again');
});

t.test('FlushDomain: PassThrough and bad handles are _1; Translate and Unmanaged succeed and change no translation', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const passThrough = createDomain(V2, DomainTypePassThrough);
  const translate = createDomain(V2, DomainTypeTranslate);
  const [frame] = platform.memory.allocatePages(1);
  ok(V2.MapLogicalRangeEx(translate, IOMMU_ACCESS_READ, contiguous(frame! * PAGE, PAGE), 0x1000, null, null, out()), 'MapLogicalRangeEx');
  const unmanaged = createDomain(V2, DomainTypeUnmanaged);
  const configured = createDomain(V2, DomainTypeUnmanaged);
  ok(V2.ConfigureDomain(configured, arm64(arm64Tables(platform, frame!))), 'ConfigureDomain');
  const deleted = createDomain(V2, DomainTypeTranslate);
  ok(V2.DeleteDomain(deleted), 'DeleteDomain');
  const all = [passThrough, translate, unmanaged, configured];
  const state = () => all.map((domain) => view(platform, domain));
  const before = state();

  for (const [what, handle] of [
    ['PassThrough', passThrough],
    ['a deleted domain', deleted],
    ['a copy of a handle', { ...translate }],
    ['null', null],
  ] as const) {
    t.equal(untyped(V2).FlushDomain(handle), STATUS_INVALID_PARAMETER_1, `FlushDomain ${what}`);
    t.equal(untyped(V2).FlushDomainByVaList(handle, false, 1, [0x1000]), STATUS_INVALID_PARAMETER_1, `FlushDomainByVaList ${what}`);
  }
  for (const [what, domain] of [
    ['Translate', translate],
    ['unconfigured Unmanaged', unmanaged],
    ['configured Unmanaged', configured],
  ] as const) {
    t.equal(V2.FlushDomain(domain), STATUS_SUCCESS, `FlushDomain ${what}`);
    t.equal(V2.FlushDomainByVaList(domain, true, 2, [0x1000, 0x2000]), STATUS_SUCCESS, `FlushDomainByVaList ${what}, LastLevel true`);
    t.equal(V2.FlushDomainByVaList(domain, false, 1, [0x1abc]), STATUS_SUCCESS, `FlushDomainByVaList ${what}, LastLevel false, unaligned address`);
    t.equal(V2.FlushDomainByVaList(domain, false, 0, []), STATUS_SUCCESS, `FlushDomainByVaList ${what}, empty list`);
  }
  t.strictSame(state(), before, 'flushes change no translation and no domain');
  t.strictSame(platform.inspectTranslation(translate, 0x1000), { physicalAddress: frame! * PAGE, access: IOMMU_ACCESS_READ, leafBytes: PAGE });
});

t.test('FlushDomainByVaList: a length mismatch with Number is _3; a VaList that is not an array of addresses is _4', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const [frame] = platform.memory.allocatePages(1);
  for (const type of [DomainTypeTranslate, DomainTypeUnmanaged]) {
    const domain = createDomain(V2, type);
    if (type === DomainTypeUnmanaged) ok(V2.ConfigureDomain(domain, arm64(arm64Tables(platform, frame!))), 'ConfigureDomain');
    const name = type === DomainTypeTranslate ? 'Translate' : 'Unmanaged';
    for (const [what, count, list] of [
      ['Number 2, one address', 2, [0x1000]],
      ['Number 1, no address', 1, []],
      ['Number 0, one address', 0, [0x1000]],
      ['Number -1', -1, [0x1000]],
      ['Number 1.5', 1.5, [0x1000]],
      ['Number "1"', '1', [0x1000]],
      ['Number 2^32', 2 ** 32, [0x1000]],
    ] as const) {
      rejected(t, platform, domain, () => untyped(V2).FlushDomainByVaList(domain, false, count, list), STATUS_INVALID_PARAMETER_3, `${name}: ${what}`);
    }
    for (const [what, list] of [
      ['null', null],
      ['a single address', 0x1000],
      ['an array-like object', { 0: 0x1000, length: 1 }],
      ['a string', 'a'],
      ['a negative address', [-0x1000]],
      ['a fractional address', [4096.5]],
      ['NaN', [NaN]],
      ['an address beyond 2^53', [2 ** 53]],
      ['a string address', ['4096']],
      ['a null address', [null]],
      ['a bad address after a good one', [0x1000, -1]],
    ] as const) {
      const count = Array.isArray(list) ? list.length : 1;
      rejected(t, platform, domain, () => untyped(V2).FlushDomainByVaList(domain, false, count, list), STATUS_INVALID_PARAMETER_4, `${name}: VaList ${what}`);
    }
  }
});

/** The fault configuration SetDeviceFaultReportingEx stored for `fn` (control-plane state, read for the "nothing changed" checks). */
function faultConfigOf(platform: Platform, fn: PciFunction) {
  const config = internalsOf(platform).iommu.deviceOfFunction.get(fn)?.faultConfig;
  return config === null || config === undefined ? config : { ...config };
}

function attachedDevice(platform: Platform, V2: DMA_IOMMU_INTERFACE_V2, bdf: { bus: number; device: number; function: number }) {
  const fn = platform.bus.addFunction(bdf);
  const device = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  ok(V2.AttachDeviceEx(createDomain(V2, DomainTypeTranslate), device.value!), 'AttachDeviceEx');
  return { fn, device: device.value! };
}

t.test('SetDeviceFaultReportingEx: attached device, its own input mapping ID on arm64, a handler to enable', async (t) => {
  const platform = await platformFor(t, { inputMappingBase: 0x8000 });
  const V2 = v2Of(platform);
  const { fn, device } = attachedDevice(platform, V2, { bus: 1, device: 2, function: 3 });
  const id = 0x8000 + 0x113;
  t.equal(fn.inputMappingId, id, 'the function reports base + requester ID');
  const handler = () => {};
  const config = { FaultHandler: handler, FaultContext: { mine: true } };
  const check = (call: () => number, expected: number, what: string) => {
    const before = faultConfigOf(platform, fn);
    t.equal(call(), expected, what);
    t.strictSame(faultConfigOf(platform, fn), before, `${what}: the fault configuration is unchanged`);
  };

  const detached = platform.bus.addFunction({ bus: 1, device: 4, function: 0 });
  const never = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(detached, null, never), 'CreateDevice');
  check(() => V2.SetDeviceFaultReportingEx(never.value!, detached.inputMappingId, true, config), STATUS_INVALID_PARAMETER_1, 'a device never attached');
  check(() => V2.SetDeviceFaultReportingEx({ ...device }, id, true, config), STATUS_INVALID_PARAMETER_1, 'a copy of the device handle');
  check(() => untyped(V2).SetDeviceFaultReportingEx(null, id, true, config), STATUS_INVALID_PARAMETER_1, 'null device');
  for (const base of [0x113, 0, id + 1, id - 1, -id, '0x8113']) {
    check(() => untyped(V2).SetDeviceFaultReportingEx(device, base, true, config), STATUS_INVALID_PARAMETER_2, `InputMappingIdBase ${String(base)}`);
  }
  for (const [what, faultConfig] of [
    ['no FaultConfig', null],
    ['FaultConfig undefined', undefined],
    ['no FaultHandler', { FaultContext: 1 }],
    ['a FaultHandler that is not a function', { FaultHandler: 'handler' }],
  ] as const) {
    check(() => untyped(V2).SetDeviceFaultReportingEx(device, id, true, faultConfig), STATUS_INVALID_PARAMETER_4, `Enable with ${what}`);
  }

  t.equal(V2.SetDeviceFaultReportingEx(device, id, true, config), STATUS_SUCCESS, 'enable');
  t.strictSame(faultConfigOf(platform, fn), { FaultHandler: handler, FaultContext: config.FaultContext }, 'handler and context are kept');
  check(() => V2.SetDeviceFaultReportingEx(device, id, true, null), STATUS_INVALID_PARAMETER_4, 'a refused re-enable keeps the current handler');
  t.equal(V2.SetDeviceFaultReportingEx(device, id, false, null), STATUS_SUCCESS, 'disabling needs no FaultConfig');
  t.equal(faultConfigOf(platform, fn), null, 'disabled');

  ok(V2.DetachDeviceEx(device), 'DetachDeviceEx');
  check(() => V2.SetDeviceFaultReportingEx(device, id, false, null), STATUS_INVALID_PARAMETER_1, 'a detached device');
});

t.test('SetDeviceFaultReportingEx on x64: InputMappingIdBase must be 0', async (t) => {
  const platform = await platformFor(t, { arch: 'x64' });
  const V2 = v2Of(platform);
  const { fn, device } = attachedDevice(platform, V2, { bus: 0, device: 3, function: 1 });
  const config = { FaultHandler: () => {}, FaultContext: null };
  for (const base of [fn.requesterId, fn.inputMappingId + 1, 1]) {
    t.equal(V2.SetDeviceFaultReportingEx(device, base, true, config), STATUS_INVALID_PARAMETER_2, `InputMappingIdBase ${base}`);
    t.equal(faultConfigOf(platform, fn), null, 'nothing enabled');
  }
  t.equal(V2.SetDeviceFaultReportingEx(device, 0, true, config), STATUS_SUCCESS);
  t.equal(faultConfigOf(platform, fn)?.FaultHandler, config.FaultHandler);
});

t.test("faultReportingEx: 'windows' answers STATUS_NOT_IMPLEMENTED to every call", async (t) => {
  for (const arch of ['arm64', 'x64'] as const) {
    const platform = await platformFor(t, { arch, faultReportingEx: 'windows' });
    const V2 = v2Of(platform);
    const { fn, device } = attachedDevice(platform, V2, { bus: 0, device: 1, function: 0 });
    const base = arch === 'arm64' ? fn.inputMappingId : 0;
    const config = { FaultHandler: () => {} };
    for (const [what, args] of [
      ['valid enable', [device, base, true, config]],
      ['valid disable', [device, base, false, null]],
      ['a bad device', [null, base, true, config]],
      ['a bad InputMappingIdBase', [device, 77, true, config]],
      ['Enable without FaultConfig', [device, base, true, null]],
    ] as const) {
      t.equal(untyped(V2).SetDeviceFaultReportingEx(...args), STATUS_NOT_IMPLEMENTED, `${arch}: ${what}`);
    }
    t.equal(faultConfigOf(platform, fn), null, `${arch}: nothing was enabled`);
  }
});
