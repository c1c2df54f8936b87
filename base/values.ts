/**
 * `value instanceof kind`, except that it answers false (rather than throwing) for a
 * Proxy whose getPrototypeOf trap throws: the platform surface checks caller values with it,
 * so that such a value is refused by name like any other wrong value.
 */
export function isInstanceOf<T>(value: unknown, kind: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof kind;
  } catch {
    return false;
  }
}
