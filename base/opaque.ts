/**
 * Opaque types: a handle the package issues (a domain, a DMA device, a token, a PDO) carries
 * a phantom property under this key, so that TypeScript tells the kinds of handle apart and
 * refuses an object made up by the caller. The key exists in types only: there is no such
 * property at run time (where the routines recognise their handles by other means and
 * answer STATUS_INVALID_PARAMETER_N for anything else).
 */
export declare const opaque: unique symbol;

/** A type only the package's own objects of kind `Kind` have. */
export interface Opaque<Kind extends string> {
  readonly [opaque]: Kind;
}
