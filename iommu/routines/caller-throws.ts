import { invalidParameter, STATUS_INVALID_PARAMETER, STATUS_UNSUCCESSFUL, type NTSTATUS } from '../../base/ntstatus.js';

/**
 * Routines never throw for bad input, and an argument whose getter or Proxy trap throws is bad
 * input: the routine reads every caller-supplied field before it changes anything, so such a
 * throw always comes before any change. These wrappers catch it and answer the refusal of the
 * argument that throws when read (STATUS_INVALID_PARAMETER_n at its position, or the
 * routine's single documented error). A throw that no argument explains is a bug of the
 * plugin, and is rethrown.
 */

/** Routines whose only documented error is not positional. */
const SINGLE_ERROR: Readonly<Record<string, NTSTATUS | undefined>> = {
  UnmapReservedLogicalRange: STATUS_INVALID_PARAMETER,
  UnregisterInterfaceStateChangeCallback: STATUS_UNSUCCESSFUL,
  // Returns nothing, as in Windows.
  QueryAvailableDomainTypes: undefined,
};

/** Field names the routines read from caller structures (a Proxy may hide them from ownKeys). */
const FIELDS = [
  'value',
  'length',
  'AsUlonglong',
  'AsULONG',
  'LogicalAllocatorType',
  'BuddyAllocatorConfig',
  'AddressWidth',
  'RegionNext',
  'Base',
  'NumberOfPages',
  'ShouldMap',
  'MapType',
  'Mdl',
  'ByteCount',
  'ByteOffset',
  'Pfns',
  'ContiguousRange',
  'Size',
  'PfnArray',
  'PageFrame',
  'FaultHandler',
  'FaultContext',
  'Type',
  'Arm64',
  'Ttbr0',
  'InputSize0',
  'TranslationEnabled',
  'OwningToken',
  'Offset',
  'behindIommu',
  'inputMappingId',
];

/** True when reading `value`'s fields (a few levels deep) throws. */
function throwsWhenRead(value: unknown, depth = 0, seen = new Set<unknown>()): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value) || depth > 3) return false;
  seen.add(value);
  try {
    const keys = new Set<PropertyKey>([...Reflect.ownKeys(value), ...FIELDS]);
    Reflect.getPrototypeOf(value);
    for (const key of keys) {
      const field = Reflect.get(value, key);
      if (typeof key === 'string' && key !== 'value' && throwsWhenRead(field, depth + 1, seen)) return true;
    }
    // Handles are looked up under private symbols: a Proxy's get trap sees any symbol.
    Reflect.get(value, Symbol.for('viommu.probe'));
    return false;
  } catch {
    return true;
  }
}

function refusal(name: string, args: readonly unknown[], error: unknown): NTSTATUS | undefined {
  const position = args.findIndex((arg) => throwsWhenRead(arg));
  if (position < 0) throw error;
  if (name in SINGLE_ERROR) return SINGLE_ERROR[name];
  return invalidParameter(Math.min(position + 1, 7) as 1 | 2 | 3 | 4 | 5 | 6 | 7);
}

// biome-ignore lint/suspicious/noExplicitAny: each routine keeps its own signature.
type Routine = (...args: any[]) => any;

/**
 * `routine` with caller throws turned into its refusal. The wrapper keeps the routine's
 * arity and passes its arguments through without collecting them, so that calls allocate
 * nothing.
 */
export function refusingCallerThrows<R extends Routine>(name: string, routine: R): R {
  const fail = (error: unknown, args: unknown[]) => refusal(name, args, error);
  let wrapped: Routine;
  switch (routine.length) {
    case 1:
      wrapped = (a: unknown) => {
        try {
          return routine(a);
        } catch (error) {
          return fail(error, [a]);
        }
      };
      break;
    case 2:
      wrapped = (a: unknown, b: unknown) => {
        try {
          return routine(a, b);
        } catch (error) {
          return fail(error, [a, b]);
        }
      };
      break;
    case 3:
      wrapped = (a: unknown, b: unknown, c: unknown) => {
        try {
          return routine(a, b, c);
        } catch (error) {
          return fail(error, [a, b, c]);
        }
      };
      break;
    case 4:
      wrapped = (a: unknown, b: unknown, c: unknown, d: unknown) => {
        try {
          return routine(a, b, c, d);
        } catch (error) {
          return fail(error, [a, b, c, d]);
        }
      };
      break;
    case 5:
      wrapped = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => {
        try {
          return routine(a, b, c, d, e);
        } catch (error) {
          return fail(error, [a, b, c, d, e]);
        }
      };
      break;
    case 6:
      wrapped = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown) => {
        try {
          return routine(a, b, c, d, e, f);
        } catch (error) {
          return fail(error, [a, b, c, d, e, f]);
        }
      };
      break;
    default:
      wrapped = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown) => {
        try {
          return routine(a, b, c, d, e, f, g);
        } catch (error) {
          return fail(error, [a, b, c, d, e, f, g]);
        }
      };
  }
  return wrapped as R;
}
