/**
 * Type and range garbage for the bad-input sweeps: every kind of value a caller can get
 * wrong, each with a name for messages. Includes objects whose every read throws (a Proxy
 * with throwing traps, and getters that throw), frozen objects and transparent proxies.
 */

/** A Proxy whose every trap throws. */
function throwingProxy(): object {
  const trap = () => {
    throw new Error('trap');
  };
  return new Proxy({}, { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap, set: trap, defineProperty: trap });
}

/** An object whose Windows field names are getters that throw. */
function throwingGetters(): object {
  const object = {};
  for (const name of [
    'MapType',
    'Base',
    'Size',
    'LogicalAllocatorType',
    'AsUlonglong',
    'AsULONG',
    'Type',
    'FaultHandler',
    'OwningToken',
    'Offset',
    'value',
    'length',
  ]) {
    Object.defineProperty(object, name, {
      get() {
        throw new Error(`getter ${name}`);
      },
      enumerable: true,
    });
  }
  return object;
}

export interface Garbage {
  name: string;
  value: unknown;
}

/** Every garbage value, fresh (objects are new each call). */
export function garbage(): Garbage[] {
  return [
    { name: 'NaN', value: Number.NaN },
    { name: 'Infinity', value: Number.POSITIVE_INFINITY },
    { name: '-Infinity', value: Number.NEGATIVE_INFINITY },
    { name: '-1', value: -1 },
    { name: '0.5', value: 0.5 },
    { name: '2**53', value: 2 ** 53 },
    { name: '1e300', value: 1e300 },
    { name: "'4096'", value: '4096' },
    { name: "'abc'", value: 'abc' },
    { name: '4096n', value: 4096n },
    { name: 'Symbol()', value: Symbol('garbage') },
    { name: 'true', value: true },
    { name: 'null', value: null },
    { name: 'undefined', value: undefined },
    { name: '{}', value: {} },
    { name: '[]', value: [] },
    { name: 'function', value: () => 0 },
    { name: 'frozen {}', value: Object.freeze({}) },
    { name: 'Object.create(null)', value: Object.create(null) },
    { name: 'Date', value: new Date(0) },
    { name: 'transparent Proxy', value: new Proxy({}, {}) },
    { name: 'throwing Proxy', value: throwingProxy() },
    { name: 'throwing getters', value: throwingGetters() },
    { name: 'read-only value', value: Object.defineProperty({}, 'value', { value: 1, writable: false }) },
    { name: 'getter-only value', value: Object.defineProperty({}, 'value', { get: () => 1 }) },
    { name: 'sealed {}', value: Object.seal({}) },
  ];
}

/** Garbage that is a usable `_Out_` holder (a plain extensible object) or a usable absent optional. */
export function isUsableOut(g: Garbage): boolean {
  return ['{}', '[]', 'Object.create(null)', 'Date', 'transparent Proxy'].includes(g.name);
}
