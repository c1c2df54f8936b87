import t, { type Test } from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  invalidParameter,
  NT_SUCCESS,
  STATUS_INVALID_PARAMETER,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  V2_ROUTINE_NAMES,
} from '../../machine/index.js';
import { buddy, out, PAGE, pfnArray, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { type Garbage, garbage, isUsableOut } from './garbage.js';

/** The routines through an untyped view: the sweep passes what the types forbid. */
type Loose = Record<string, (...args: unknown[]) => unknown>;

/** What a parameter position accepts, which decides which garbage is really garbage there. */
type Kind =
  | 'handle' // a live handle of the right kind
  | 'number' // an address, size, ULONG or permission mask
  | 'optional-number' // the same, or null/undefined
  | 'boolean' // true/false/0/1
  | 'structure' // a Windows structure
  | 'optional-structure'
  | 'out' // an _Out_ holder
  | 'optional-out'
  | 'callback'
  | 'pdo'
  | 'buffer'
  | 'anything';

function isGarbageFor(kind: Kind, g: Garbage): boolean {
  const absent = g.value === null || g.value === undefined;
  switch (kind) {
    case 'anything':
      return false;
    case 'optional-number':
    case 'optional-structure':
      return !absent;
    case 'boolean':
      return g.value !== true;
    case 'out':
      return !isUsableOut(g);
    case 'optional-out':
      return !absent && !isUsableOut(g);
    case 'callback':
      return typeof g.value !== 'function';
    case 'buffer':
      return !Array.isArray(g.value);
    default:
      return true;
  }
}

/** A platform with something of everything: domains of each type, devices, a mapping, an identity map, a token with a segment. */
async function world(t: Test) {
  const platform = await platformFor(t);
  const V2 = v2Of(platform) as unknown as Loose;
  const call = (name: string, ...args: unknown[]) => {
    const status = V2[name]!(...args);
    if (status !== STATUS_SUCCESS) throw new Error(`${name}: 0x${(status as number).toString(16)}`);
  };
  const fns = [1, 2, 3].map((device) => platform.bus.addFunction({ bus: 0, device, function: 0 }));
  const domain = (type: number, allocator: unknown = null) => {
    const o = out<object>();
    call('CreateDomainEx', type, ZERO_FLAGS, allocator, null, o);
    return o.value!;
  };
  const device = (i: number) => {
    const o = out<object>();
    call('CreateDevice', fns[i], null, o);
    return o.value!;
  };
  const translate = domain(DomainTypeTranslate);
  const buddyDomain = domain(DomainTypeTranslate, buddy());
  const passThrough = domain(DomainTypePassThrough);
  const unmanaged = domain(DomainTypeUnmanaged);
  const attached = device(0);
  const registered = device(1);
  call('AttachDeviceEx', translate, attached);
  call('SetDeviceFaultReportingEx', attached, fns[0]!.inputMappingId, true, { FaultHandler: () => {} });
  const callback = () => {};
  call('RegisterInterfaceStateChangeCallback', callback, null, registered, { AsULONG: 1 });
  const pages = platform.memory.allocatePages(8);
  const logical = out<number>();
  call('MapLogicalRangeEx', translate, 3, pfnArray([pages[0]!]), 0x10_0000, null, null, logical);
  call('MapIdentityRangeEx', translate, 3, pfnArray([pages[1]!]));
  const token = out<object>();
  call('ReserveLogicalAddressRange', translate, 4 * PAGE, 0x20_0000, null, null, token);
  const segment = out<object>();
  call('MapReservedLogicalRange', token.value, 0, 3, pfnArray([pages[2]!]), segment);
  const probes = [0x10_0000, pages[1]! * PAGE, 0x20_0000, 0x20_1000, 0x30_0000];
  const domains = [translate, buddyDomain, passThrough, unmanaged];
  /** Everything a refused call must leave as it was. */
  const fingerprint = () =>
    JSON.stringify({
      domains: domains.map((d) => platform.describeDomain(d as never)),
      translations: probes.map((address) => platform.inspectTranslation(translate as never, address)),
      tables: platform.pageTablesInUse,
      free: platform.memory.freePageCount,
      faults: platform.faultStats(),
      policy: platform.policy,
      available: [attached, registered].map((d) => {
        const o = out<number>();
        V2.QueryAvailableDomainTypes!(d, o);
        return o.value;
      }),
    });
  // Valid arguments for each routine; one position at a time is replaced by garbage.
  const valid: Record<string, { args: () => unknown[]; kinds: Kind[] }> = {
    CreateDomainEx: {
      args: () => [DomainTypeTranslate, ZERO_FLAGS, null, null, {}],
      kinds: ['number', 'structure', 'optional-structure', 'optional-structure', 'out'],
    },
    DeleteDomain: { args: () => [passThrough], kinds: ['handle'] },
    AttachDeviceEx: { args: () => [passThrough, registered], kinds: ['handle', 'handle'] },
    DetachDeviceEx: { args: () => [attached], kinds: ['handle'] },
    FlushDomain: { args: () => [unmanaged], kinds: ['handle'] },
    FlushDomainByVaList: { args: () => [unmanaged, false, 1, [0x1000]], kinds: ['handle', 'boolean', 'number', 'buffer'] },
    QueryInputMappings: { args: () => [fns[2], [], 4, {}], kinds: ['pdo', 'buffer', 'number', 'optional-out'] },
    MapLogicalRangeEx: {
      args: () => [translate, 3, pfnArray([pages[3]!]), 0x30_0000, null, null, {}],
      kinds: ['handle', 'number', 'structure', 'optional-number', 'optional-number', 'optional-number', 'out'],
    },
    UnmapLogicalRange: { args: () => [translate, 0x10_0000, 1], kinds: ['handle', 'number', 'number'] },
    MapIdentityRangeEx: { args: () => [translate, 3, pfnArray([pages[4]!])], kinds: ['handle', 'number', 'structure'] },
    UnmapIdentityRangeEx: { args: () => [translate, pfnArray([pages[1]!])], kinds: ['handle', 'structure'] },
    SetDeviceFaultReportingEx: {
      args: () => [attached, fns[0]!.inputMappingId, true, { FaultHandler: () => {} }],
      kinds: ['handle', 'number', 'boolean', 'structure'],
    },
    ConfigureDomain: {
      args: () => [unmanaged, { Type: 0, Arm64: { Ttbr0: pages[5]! * PAGE, InputSize0: 48, TranslationEnabled: true } }],
      kinds: ['handle', 'structure'],
    },
    QueryAvailableDomainTypes: { args: () => [registered, {}], kinds: ['handle', 'out'] },
    RegisterInterfaceStateChangeCallback: { args: () => [callback, null, attached, { AsULONG: 1 }], kinds: ['callback', 'anything', 'handle', 'structure'] },
    UnregisterInterfaceStateChangeCallback: { args: () => [callback, registered], kinds: ['callback', 'handle'] },
    ReserveLogicalAddressRange: {
      args: () => [translate, PAGE, 0x40_0000, null, null, {}],
      kinds: ['handle', 'number', 'optional-number', 'optional-number', 'optional-number', 'out'],
    },
    FreeReservedLogicalAddressRange: { args: () => [token.value], kinds: ['handle'] },
    MapReservedLogicalRange: { args: () => [token.value, PAGE, 3, pfnArray([pages[6]!]), {}], kinds: ['handle', 'number', 'number', 'structure', 'out'] },
    UnmapReservedLogicalRange: { args: () => [segment.value], kinds: ['structure'] },
    CreateDevice: { args: () => [fns[2], null, {}], kinds: ['pdo', 'optional-structure', 'out'] },
    DeleteDevice: { args: () => [registered], kinds: ['handle'] },
  };
  return { platform, V2, fingerprint, valid };
}

/** The status a refusal of position `position` must be. */
function expectedRefusal(name: string, position: number, value: unknown): number | undefined {
  if (name === 'QueryAvailableDomainTypes') return undefined;
  if (name === 'UnmapReservedLogicalRange') return STATUS_INVALID_PARAMETER;
  if (name === 'UnregisterInterfaceStateChangeCallback') return STATUS_UNSUCCESSFUL;
  // VaList: an array of the wrong length disagrees with Number (_3); anything else is _4.
  if (name === 'FlushDomainByVaList' && position === 4 && Array.isArray(value)) return invalidParameter(3);
  return invalidParameter(position as 1 | 2 | 3 | 4 | 5 | 6 | 7);
}

t.test('every parameter of every routine refuses type and range garbage with its status, never throws, and changes nothing', async (t) => {
  const { V2, fingerprint, valid } = await world(t);
  t.same(Object.keys(valid), [...V2_ROUTINE_NAMES], 'all 22 routines are swept');
  const before = fingerprint();
  let calls = 0;
  const problems: string[] = [];
  for (const name of V2_ROUTINE_NAMES) {
    const { args, kinds } = valid[name]!;
    kinds.forEach((kind, i) => {
      for (const g of garbage()) {
        if (!isGarbageFor(kind, g)) continue;
        const callArgs = args();
        callArgs[i] = g.value;
        const label = `${name}: parameter ${i + 1} = ${g.name}`;
        let result: unknown;
        try {
          result = V2[name]!(...callArgs);
        } catch (error) {
          problems.push(`${label}: threw ${String(error)}`);
          continue;
        }
        calls++;
        const expected = expectedRefusal(name, i + 1, g.value);
        if (result !== expected) problems.push(`${label}: returned ${String(result)}, expected ${String(expected)}`);
        if (typeof result === 'number' && NT_SUCCESS(result)) problems.push(`${label}: succeeded`);
        // _Out_ holders passed alongside stay untouched.
        for (const [k, arg] of callArgs.entries()) {
          if (k !== i && (kinds[k] === 'out' || kinds[k] === 'optional-out') && typeof arg === 'object' && arg !== null && 'value' in arg)
            problems.push(`${label}: _Out_ parameter ${k + 1} written on failure`);
        }
        if (fingerprint() !== before) problems.push(`${label}: changed the platform's state`);
      }
    });
  }
  t.same(problems, [], `${calls} refused calls`);
  t.ok(calls > 1000, `${calls} garbage calls made`);
});
