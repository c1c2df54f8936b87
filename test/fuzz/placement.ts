import fc from 'fast-check';
import { Divergence } from './checks.js';
import { checkBuddyPlacement } from './domain-commands.js';
import { type Block, type DomainModel, orderFor, PAGE } from './model.js';
import { addressOf, type PagePick, pagePickArb, showPage } from './refs.js';
import { S } from './step.js';

/** Where MapLogicalRangeEx and ReserveLogicalAddressRange are asked to place a range. */
export interface Placement {
  explicit: PagePick | null;
  /** Inclusive byte bounds (null: none); `inverted` swaps them so that Min > Max. */
  min: number | null;
  max: number | null;
}

export const placementArb: fc.Arbitrary<Placement> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ explicit: null, min: null, max: null }) },
  { weight: 6, arbitrary: pagePickArb.map((explicit) => ({ explicit, min: null, max: null })) },
  {
    weight: 2,
    arbitrary: fc.record({ explicit: fc.constant(null), min: fc.nat(64).map((p) => p * PAGE + 1), max: fc.nat(256).map((p) => p * PAGE + 100) }),
  },
);

export function showPlacement(p: Placement): string {
  if (p.explicit !== null) return `at ${showPage(p.explicit)}`;
  if (p.min !== null) return `in [${p.min}, ${p.max}]`;
  return 'anywhere';
}

/**
 * The status placement decides (after every parameter check passed), for `pages` pages in
 * `domain`; `outOfSpace` is the routine's status for an explicit range past the space.
 */
export function placementStatus(domain: DomainModel, pages: number, p: Placement, outOfSpace: number, occupied: (first: number, n: number) => boolean): number {
  if (p.explicit !== null) {
    if (domain.buddy) return S.NOT_SUPPORTED;
    const first = addressOf(p.explicit, domain.spacePages) / PAGE;
    if (first + pages > domain.spacePages) return outOfSpace;
    if (occupied(first, pages)) return S.IN_USE;
    return S.SUCCESS;
  }
  if (!domain.buddy) return S.NOT_SUPPORTED;
  const { lowPage, highPage, inverted } = bounds(domain, p);
  if (inverted) return S.MIX;
  const bounded = p.min !== null || p.max !== null;
  if (!hasRoom(domain, orderFor(pages), lowPage, highPage)) return bounded ? S.MIX : S.INSUFFICIENT_RESOURCES;
  return S.SUCCESS;
}

function bounds(domain: DomainModel, p: Placement): { lowPage: number; highPage: number; inverted: boolean } {
  const low = p.min ?? 0;
  const high = p.max ?? domain.spacePages * PAGE - 1;
  return { lowPage: Math.ceil(low / PAGE), highPage: Math.min(domain.spacePages, Math.floor((high + 1) / PAGE)), inverted: low > high };
}

function hasRoom(domain: DomainModel, order: number, lowPage: number, highPage: number): boolean {
  const size = 2 ** order;
  const taken = domain.blocks.slice().sort((a, b) => a.first - b.first);
  let candidate = Math.ceil(lowPage / size) * size;
  while (candidate + size <= highPage) {
    const clash = taken.find((b) => b.first < candidate + size && candidate < b.first + b.pages);
    if (clash === undefined) return true;
    candidate = Math.ceil((clash.first + clash.pages) / size) * size;
  }
  return false;
}

/** The first page the routine placed the range at, checked against the model; and its buddy block. */
export function placed(domain: DomainModel, pages: number, p: Placement, address: unknown, what: string): { first: number; block: Block | null } {
  if (p.explicit !== null) {
    const first = addressOf(p.explicit, domain.spacePages) / PAGE;
    if (address !== first * PAGE) throw new Divergence(`${what}: placed at ${String(address)}, asked for ${first * PAGE}`);
    return { first, block: null };
  }
  const { lowPage, highPage } = bounds(domain, p);
  const block = checkBuddyPlacement(domain, address, orderFor(pages), lowPage, highPage, what);
  return { first: block.first, block };
}

/** Explicit addresses must be page-aligned non-negative integers: the parameter's own check. */
export function explicitValid(p: Placement, spacePages: number): boolean {
  return p.explicit === null || (p.explicit.where !== 'misaligned' && addressOf(p.explicit, spacePages) >= 0);
}

export function explicitValue(p: Placement, spacePages: number): number | null {
  return p.explicit === null ? null : addressOf(p.explicit, spacePages);
}
