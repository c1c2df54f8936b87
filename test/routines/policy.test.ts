import t from 'tap';
import {
  createPlatform,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  STATUS_ACCESS_DENIED,
  STATUS_INVALID_PARAMETER_1,
  STATUS_SUCCESS,
  type Architecture,
  type DMA_IOMMU_INTERFACE_V2,
  type DmaProtectionPolicy,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_INTERFACE_STATE_CHANGE,
  type Platform,
} from '../../machine/index.js';
import { ok, out, platformFor, rng, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/**
 * The policy table of the issue: every dmaGuardPolicy x external-facing x userUnlocked x
 * kernelDmaProtection combination gives the contract's mask, and each change fires exactly
 * the callbacks whose mask changed.
 */

const TRANSLATE = 1 << DomainTypeTranslate;
const PASS_THROUGH = 1 << DomainTypePassThrough;
const UNMANAGED = 1 << DomainTypeUnmanaged;

/** The contract's table, written out: [kernelDmaProtection, dmaGuardPolicy, userUnlocked, PassThrough for an external-facing port]. */
const TABLE: ReadonlyArray<readonly [boolean, 0 | 1 | 2, boolean, boolean]> = [
  [false, 0, false, true],
  [false, 0, true, true],
  [false, 1, false, true],
  [false, 1, true, true],
  [false, 2, false, true],
  [false, 2, true, true],
  [true, 0, false, false],
  [true, 0, true, false],
  [true, 1, false, false],
  [true, 1, true, true],
  [true, 2, false, true],
  [true, 2, true, true],
];
const POLICIES: DmaProtectionPolicy[] = TABLE.map(([kernelDmaProtection, dmaGuardPolicy, userUnlocked]) => ({
  kernelDmaProtection,
  dmaGuardPolicy,
  userUnlocked,
}));

function expectedMask(arch: Architecture, index: number, external: boolean): number {
  const passThrough = external ? TABLE[index]![3] : true; // an internal port always keeps PassThrough
  return TRANSLATE | (arch === 'arm64' ? UNMANAGED : 0) | (passThrough ? PASS_THROUGH : 0);
}

function label(policy: DmaProtectionPolicy): string {
  return `kdp=${policy.kernelDmaProtection} guard=${policy.dmaGuardPolicy} unlocked=${policy.userUnlocked}`;
}

function createDevice(platform: Platform, V2: DMA_IOMMU_INTERFACE_V2, device: number, externalFacing: boolean): IOMMU_DMA_DEVICE {
  const fn = platform.bus.addFunction({ bus: 0, device, function: 0, externalFacing });
  const handle = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(fn, null, handle), 'CreateDevice');
  return handle.value!;
}

function query(V2: DMA_IOMMU_INTERFACE_V2, device: IOMMU_DMA_DEVICE): number | undefined {
  const mask = out<number>();
  V2.QueryAvailableDomainTypes(device, mask);
  return mask.value;
}

for (const arch of ['arm64', 'x64'] as const) {
  t.test(`${arch}: the 24 combinations as platform options give the contract's mask`, async (t) => {
    for (const [index, policy] of POLICIES.entries()) {
      await t.test(label(policy), async (t) => {
        const platform = await platformFor(t, { arch, ...policy, memoryBytes: 1 << 20, pageTableBytes: 16 * 2048 });
        const V2 = v2Of(platform);
        t.strictSame(platform.policy, policy, 'the policy getter reports the options');
        const internal = createDevice(platform, V2, 1, false);
        const external = createDevice(platform, V2, 2, true);
        t.strictSame([query(V2, internal), query(V2, external)], [expectedMask(arch, index, false), expectedMask(arch, index, true)]);
        const mask = out<number>();
        t.equal(V2.QueryAvailableDomainTypes(external, mask), undefined, 'QueryAvailableDomainTypes returns nothing, as in Windows');
      });
    }
  });

  t.test(`${arch}: the 24 combinations reached with setPolicy give the same masks`, async (t) => {
    const platform = await platformFor(t, { arch });
    const V2 = v2Of(platform);
    const internal = createDevice(platform, V2, 1, false);
    const external = createDevice(platform, V2, 2, true);
    const got: Array<[string, number | undefined, number | undefined]> = [];
    const want: Array<[string, number, number]> = [];
    for (const [index, policy] of POLICIES.entries()) {
      platform.setPolicy(policy);
      t.strictSame(platform.policy, policy);
      got.push([label(policy), query(V2, internal), query(V2, external)]);
      want.push([label(policy), expectedMask(arch, index, false), expectedMask(arch, index, true)]);
    }
    t.strictSame(got, want);
  });

  t.test(`${arch}: each of the 144 transitions fires exactly the callbacks whose mask changed, once, with the new mask`, async (t) => {
    const platform = await platformFor(t, { arch });
    const V2 = v2Of(platform);
    const log: Array<{ who: string; change: IOMMU_INTERFACE_STATE_CHANGE; context: unknown }> = [];
    const contexts = { internal: { name: 'internal' }, external: { name: 'external' } };
    const devices = { internal: createDevice(platform, V2, 1, false), external: createDevice(platform, V2, 2, true) };
    createDevice(platform, V2, 3, true); // external, never registered: must not matter
    for (const who of ['internal', 'external'] as const) {
      const callback = (change: IOMMU_INTERFACE_STATE_CHANGE, context: unknown) => log.push({ who, change: structuredClone(change), context });
      ok(V2.RegisterInterfaceStateChangeCallback(callback, contexts[who], devices[who], { AsULONG: 1 }), 'Register');
    }
    const problems: string[] = [];
    let fired = 0;
    for (const [from, fromPolicy] of POLICIES.entries()) {
      for (const [to, toPolicy] of POLICIES.entries()) {
        platform.setPolicy(fromPolicy);
        log.length = 0;
        platform.setPolicy(toPolicy);
        const expected =
          expectedMask(arch, from, true) === expectedMask(arch, to, true)
            ? []
            : [{ who: 'external', change: { PresentFields: { AsULONG: 1 }, AvailableDomainTypes: expectedMask(arch, to, true) }, context: contexts.external }];
        fired += expected.length;
        if (JSON.stringify(log) !== JSON.stringify(expected) || log.some((entry) => entry.context !== contexts[entry.who as 'external'])) {
          problems.push(`${label(fromPolicy)} -> ${label(toPolicy)}: ${JSON.stringify(log)}, expected ${JSON.stringify(expected)}`);
        }
      }
    }
    t.strictSame(problems, []);
    t.equal(fired, 2 * 9 * 3, '9 policies leave an external port PassThrough, 3 do not: 54 transitions change its mask');
  });
}

t.test('a seeded walk of partial policy changes: one call per real change of the mask, never otherwise', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const internal = createDevice(platform, V2, 1, false);
  const external = createDevice(platform, V2, 2, true);
  const calls = { internal: [] as number[], external: [] as number[] };
  ok(
    V2.RegisterInterfaceStateChangeCallback((c: IOMMU_INTERFACE_STATE_CHANGE) => calls.internal.push(c.AvailableDomainTypes), null, internal, { AsULONG: 1 }),
    'Register',
  );
  ok(
    V2.RegisterInterfaceStateChangeCallback((c: IOMMU_INTERFACE_STATE_CHANGE) => calls.external.push(c.AvailableDomainTypes), null, external, { AsULONG: 1 }),
    'Register',
  );
  const random = rng(2024);
  const expected = [query(V2, external)!];
  let current: DmaProtectionPolicy = { ...platform.policy };
  for (let step = 0; step < 300; step++) {
    const change: Partial<DmaProtectionPolicy> = {};
    if (random() < 0.5) change.dmaGuardPolicy = Math.floor(random() * 3) as 0 | 1 | 2;
    if (random() < 0.5) change.userUnlocked = random() < 0.5;
    if (random() < 0.3) change.kernelDmaProtection = random() < 0.5;
    platform.setPolicy(change);
    current = { ...current, ...change };
    const index = POLICIES.findIndex((p) => label(p) === label(current));
    const mask = expectedMask('arm64', index, true);
    if (mask !== expected[expected.length - 1]) expected.push(mask);
  }
  t.strictSame(platform.policy, current, 'partial changes keep the other keys');
  t.strictSame(calls.internal, [expectedMask('arm64', 0, false)], 'the internal device heard only its registration call');
  t.strictSame(calls.external, expected, 'the external device heard its registration call, then each real change once');
  t.ok(expected.length > 20, `the walk changed the mask ${expected.length - 1} times`);
  platform.setPolicy({});
  platform.setPolicy({ ...current });
  t.equal(calls.external.length, expected.length, 'setPolicy({}) and re-setting the same policy fire nothing');
});

t.test('AttachDeviceEx answers STATUS_ACCESS_DENIED for a PassThrough domain outside the mask; CreateDomainEx is never refused by policy', async (t) => {
  for (const arch of ['arm64', 'x64'] as const) {
    const platform = await platformFor(t, { arch });
    const V2 = v2Of(platform);
    const internal = createDevice(platform, V2, 1, false);
    const external = createDevice(platform, V2, 2, true);
    for (const [index, policy] of POLICIES.entries()) {
      platform.setPolicy(policy);
      const what = `${arch} ${label(policy)}`;
      const passThrough = out<IOMMU_DMA_DOMAIN>();
      t.equal(
        V2.CreateDomainEx(DomainTypePassThrough, ZERO_FLAGS, null, null, passThrough),
        STATUS_SUCCESS,
        `${what}: a PassThrough domain can always be created`,
      );
      const allowed = (expectedMask(arch, index, true) & PASS_THROUGH) !== 0;
      t.equal(V2.AttachDeviceEx(passThrough.value!, external), allowed ? STATUS_SUCCESS : STATUS_ACCESS_DENIED, `${what}: external device`);
      t.equal(platform.describeDomain(passThrough.value!)!.devices, allowed ? 1 : 0, `${what}: attached only when allowed`);
      t.equal(V2.DetachDeviceEx(external), allowed ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER_1, `${what}: a refused device is not attached`);
      t.equal(V2.AttachDeviceEx(passThrough.value!, internal), STATUS_SUCCESS, `${what}: an internal device always may`);
      ok(V2.DetachDeviceEx(internal), 'DetachDeviceEx');

      const translate = out<IOMMU_DMA_DOMAIN>();
      ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, translate), 'CreateDomainEx');
      t.equal(V2.AttachDeviceEx(translate.value!, external), STATUS_SUCCESS, `${what}: Translate is always available`);
      ok(V2.DetachDeviceEx(external), 'DetachDeviceEx');
      if (arch === 'arm64') {
        const unmanaged = out<IOMMU_DMA_DOMAIN>();
        ok(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, unmanaged), 'CreateDomainEx');
        t.equal(V2.AttachDeviceEx(unmanaged.value!, external), STATUS_SUCCESS, `${what}: Unmanaged is available on arm64`);
        ok(V2.DetachDeviceEx(external), 'DetachDeviceEx');
        ok(V2.DeleteDomain(unmanaged.value!), 'DeleteDomain');
      }
      ok(V2.DeleteDomain(translate.value!), 'DeleteDomain');
      ok(V2.DeleteDomain(passThrough.value!), 'DeleteDomain');
    }
  }
});

t.test('a device refused PassThrough gets it once the policy allows it (user unlocks)', async (t) => {
  const platform = await platformFor(t, { dmaGuardPolicy: 1, userUnlocked: false });
  const V2 = v2Of(platform);
  const external = createDevice(platform, V2, 4, true);
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypePassThrough, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  t.equal(V2.AttachDeviceEx(domain.value!, external), STATUS_ACCESS_DENIED);
  platform.setPolicy({ userUnlocked: true });
  t.equal(V2.AttachDeviceEx(domain.value!, external), STATUS_SUCCESS);
});

t.test('setPolicy rejects bad arguments with a TypeError naming the key, and changes nothing', async (t) => {
  const platform = await platformFor(t, { dmaGuardPolicy: 1, userUnlocked: true });
  const V2 = v2Of(platform);
  const external = createDevice(platform, V2, 1, true);
  const calls: number[] = [];
  ok(
    V2.RegisterInterfaceStateChangeCallback((c: IOMMU_INTERFACE_STATE_CHANGE) => calls.push(c.AvailableDomainTypes), null, external, { AsULONG: 1 }),
    'Register',
  );
  const before = platform.policy;
  const cases: Array<[unknown, RegExp]> = [
    [null, /^policy must be an object/],
    [undefined, /^policy must be an object/],
    ['strict', /^policy must be an object/],
    [{ dmaGuardPolicy: 3 }, /policy\.dmaGuardPolicy/],
    [{ dmaGuardPolicy: -1 }, /policy\.dmaGuardPolicy/],
    [{ dmaGuardPolicy: '0' }, /policy\.dmaGuardPolicy/],
    [{ dmaGuardPolicy: 1.5 }, /policy\.dmaGuardPolicy/],
    [{ userUnlocked: 0 }, /policy\.userUnlocked/],
    [{ userUnlocked: 'false' }, /policy\.userUnlocked/],
    [{ kernelDmaProtection: 1 }, /policy\.kernelDmaProtection/],
    [{ kernelDmaProtection: null }, /policy\.kernelDmaProtection/],
    [{ dmaGuardPolicyy: 0 }, /policy\.dmaGuardPolicyy/],
    [{ dmaGuardPolicy: 0, userUnlocked: 'no' }, /policy\.userUnlocked/],
    [{ userUnlocked: false, extra: true }, /policy\.extra/],
  ];
  for (const [argument, message] of cases) {
    t.throws(() => platform.setPolicy(argument as never), { name: 'TypeError', message }, JSON.stringify(argument) ?? 'undefined');
    t.strictSame(platform.policy, before, `${JSON.stringify(argument)}: the policy is unchanged (no key applied)`);
  }
  t.strictSame(calls, [TRANSLATE | PASS_THROUGH | UNMANAGED], 'no callback fired after the registration call');
  t.equal(query(V2, external), TRANSLATE | PASS_THROUGH | UNMANAGED);

  const copy = platform.policy as DmaProtectionPolicy;
  copy.dmaGuardPolicy = 0;
  t.equal(platform.policy.dmaGuardPolicy, 1, 'the policy getter hands out a copy');
  t.equal(query(V2, external), TRANSLATE | PASS_THROUGH | UNMANAGED, 'and mutating it changes nothing');
});

t.test('the options and setPolicy check policy fields alike, each naming the field its own way (exact messages)', async (t) => {
  const options: Array<[Record<string, unknown>, string]> = [
    [{ dmaGuardPolicy: 3 }, 'options.dmaGuardPolicy must be 0, 1 or 2 (got 3)'],
    [{ userUnlocked: 'yes' }, 'options.userUnlocked must be a boolean (got "yes")'],
    [{ kernelDmaProtection: 0 }, 'options.kernelDmaProtection must be a boolean (got 0)'],
  ];
  for (const [option, message] of options) await t.rejects(createPlatform({ workers: 0, ...option }), { name: 'TypeError', message }, message);
  const platform = await platformFor(t, { workers: 0 });
  const calls: Array<[Record<string, unknown>, string]> = [
    [{ dmaGuardPolicy: 7 }, 'policy.dmaGuardPolicy must be 0, 1 or 2 (got 7)'],
    [{ kernelDmaProtection: 1 }, 'policy.kernelDmaProtection must be a boolean (got 1)'],
    [{ dmaGuardPolicy: 0, other: 1 }, 'policy.other must be one of dmaGuardPolicy, userUnlocked, kernelDmaProtection (got 1)'],
  ];
  for (const [policy, message] of calls) t.throws(() => platform.setPolicy(policy as never), { name: 'TypeError', message }, message);
  t.strictSame(platform.policy, { kernelDmaProtection: true, dmaGuardPolicy: 1, userUnlocked: true }, 'nothing of a refused policy was applied');
});
