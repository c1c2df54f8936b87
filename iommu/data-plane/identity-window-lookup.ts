import { DOMAIN_RECORD_INTS, kDomainIdentityCountField, kDomainIdentityVersionField } from '../shared-memory/domain-table.js';
import { IdentityWindows, WINDOW_DOUBLES } from '../shared-memory/identity-windows.js';
import type { LeafReach } from './leaf-results.js';

/**
 * The identity fast path (layout in shared-memory/identity-windows.ts): `page * 4 | access`
 * when `page` lies in one of `domain`'s identity windows, with the pages left in that window
 * written into `reach` (the side-result convention, leaf-results.ts); else -1. `domains` and
 * `windows` are the domain table's fields and the windows' values. Read under the windows'
 * seqlock: an inconsistent read answers -1 and the caller walks the table, which holds the
 * same leaves.
 */
export function lookupIdentityWindow(domains: Int32Array, windows: Float64Array, domain: number, page: number, reach: LeafReach): number {
  const d = domain * DOMAIN_RECORD_INTS;
  const count = domains[d + kDomainIdentityCountField]!;
  if (count === 0) return -1;
  const version = Atomics.load(domains, d + kDomainIdentityVersionField);
  if ((version & 1) !== 0) return -1;
  const base = IdentityWindows.baseOf(domain);
  let found = -1;
  let pagesLeft = 0;
  for (let i = 0; i < count; i++) {
    const at = base + i * WINDOW_DOUBLES;
    if (page >= windows[at]! && page < windows[at + 1]!) {
      found = page * 4 + windows[at + 2]!;
      pagesLeft = windows[at + 1]! - page;
      break;
    }
  }
  if (Atomics.load(domains, d + kDomainIdentityVersionField) !== version) return -1;
  if (found >= 0) reach.pagesLeft = pagesLeft;
  return found;
}
