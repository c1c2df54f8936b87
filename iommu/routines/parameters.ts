import { IOMMU_ACCESS_RESERVED_MASK } from '../../base/enums.js';
import { isAddress, isPageAligned } from '../../base/numbers.js';
import type { Out } from '../types.js';

/** Checks shared by the routines. Each answers "is this parameter acceptable?" and nothing else. */

/**
 * An `_Out_` parameter: an object whose `value` the routine can fill. A frozen, sealed or
 * non-extensible object, a read-only or getter-only `value` (own or inherited) and a Proxy
 * whose traps throw are refused before anything changes, so that filling it at the end of a
 * successful call cannot fail half-way.
 */
export function isOut(value: unknown): value is Out<unknown> {
  if (typeof value !== 'object' || value === null) return false;
  try {
    for (let at: object | null = value; at !== null; at = Reflect.getPrototypeOf(at)) {
      const slot = Reflect.getOwnPropertyDescriptor(at, 'value');
      if (slot === undefined) continue;
      if (slot.set !== undefined) return false; // a setter runs caller code: not a plain holder
      if (slot.get !== undefined || slot.writable !== true) return false;
      return at === value || Reflect.isExtensible(value);
    }
    return Reflect.isExtensible(value);
  } catch {
    return false;
  }
}

export function isAbsent(value: unknown): value is null | undefined {
  return value === null || value === undefined;
}

/** An `_In_opt_` address: absent, or a non-negative safe integer. */
export function isOptionalAddress(value: unknown): value is number | null | undefined {
  return isAbsent(value) || isAddress(value);
}

export function isOptionalPageAddress(value: unknown): value is number | null | undefined {
  return isAbsent(value) || (isAddress(value) && isPageAligned(value));
}

/** A ULONG. */
export function isUlong(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

/** IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE bits only (IOMMU_ACCESS_NONE is allowed). */
export function isPermissions(value: unknown): value is number {
  return isUlong(value) && (value & IOMMU_ACCESS_RESERVED_MASK) === 0;
}

/** An enum value in [0, max). */
export function isEnumBelow(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < max;
}

/** A BOOLEAN: true/false, or 0/1 as C code would pass it. */
export function isBoolean(value: unknown): value is boolean | 0 | 1 {
  return value === true || value === false || value === 0 || value === 1;
}
