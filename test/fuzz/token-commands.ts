import fc from 'fast-check';
import { outArb, w } from './domain-commands.js';
import { permArb } from './mapping-commands.js';
import { type Model, PAGE, Translate } from './model.js';
import { explicitValid, explicitValue, type Placement, placed, placementArb, placementStatus, showPlacement } from './placement.js';
import { buildDescription, type Description, descriptionArb, type Ref, refArb, resolve, showDescription, showRef, wellFormed } from './refs.js';
import { makeOut, type OutKind, P, S, Step } from './step.js';
import type { World } from './world.js';

class Reserve extends Step {
  constructor(
    readonly domain: Ref,
    readonly bytes: number,
    readonly placement: Placement,
    readonly out: OutKind,
  ) {
    super();
  }

  toString(): string {
    return `ReserveLogicalAddressRange(${showRef(this.domain)}, ${this.bytes} bytes, ${showPlacement(this.placement)}, out ${this.out})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('domain', this.domain, m, w);
    const domain = id === null ? undefined : m.domains.get(id);
    const pages = this.bytes / PAGE;
    const out = makeOut(this.out);
    let expected: number = S.SUCCESS;
    if (domain === undefined || domain.type !== Translate) expected = P(1);
    else if (this.bytes === 0 || this.bytes % PAGE !== 0) expected = P(2);
    else if (!explicitValid(this.placement, domain.spacePages)) expected = P(3);
    else if (this.out !== 'ok') expected = P(6);
    else expected = placementStatus(domain, pages, this.placement, P(3), (first, n) => m.occupied(domain, first, n));
    this.call(w, 'ReserveLogicalAddressRange', expected, [
      value,
      this.bytes,
      explicitValue(this.placement, domain?.spacePages ?? 2 ** 41),
      this.placement.min,
      this.placement.max,
      out,
    ]);
    if (expected !== S.SUCCESS || domain === undefined) {
      this.untouched(out, 'ReserveLogicalAddressRange');
      return;
    }
    const handle = out.value as { LogicalAddressBase: number; Size: number };
    const { first, block } = placed(domain, pages, this.placement, handle.LogicalAddressBase, 'ReserveLogicalAddressRange');
    if (handle.Size !== this.bytes) throw new Error(`ReserveLogicalAddressRange: token Size ${handle.Size}, asked for ${this.bytes}`);
    if (block !== null) domain.blocks.push(block);
    const token = { id: m.nextId(), domain: domain.id, first, pages, block, segments: new Map() };
    m.tokens.set(token.id, token);
    domain.tokens.add(token.id);
    for (let p = first; p < first + pages; p++) domain.pages.set(p, { kind: 'token', token: token.id });
    w.tokens.set(token.id, handle);
  }
}

class FreeToken extends Step {
  constructor(readonly token: Ref) {
    super();
  }

  toString(): string {
    return `FreeReservedLogicalAddressRange(${showRef(this.token)})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('token', this.token, m, w);
    const token = id === null ? undefined : m.tokens.get(id);
    const expected = token === undefined ? P(1) : token.segments.size > 0 ? S.IN_USE : S.SUCCESS;
    this.call(w, 'FreeReservedLogicalAddressRange', expected, [value]);
    if (expected !== S.SUCCESS || token === undefined) return;
    const domain = m.domains.get(token.domain)!;
    for (let p = token.first; p < token.first + token.pages; p++) domain.pages.delete(p);
    if (token.block !== null) domain.blocks.splice(domain.blocks.indexOf(token.block), 1);
    domain.tokens.delete(token.id);
    m.tokens.delete(token.id);
    m.deadTokens.push(token.id);
    m.revoke(domain.id, token.first, token.pages);
    w.dead.set(token.id, w.tokens.get(token.id)!);
    w.tokens.delete(token.id);
  }
}

class MapReserved extends Step {
  constructor(
    readonly token: Ref,
    readonly offset: number,
    readonly perm: number,
    readonly description: Description,
    readonly out: OutKind,
  ) {
    super();
  }

  toString(): string {
    return `MapReservedLogicalRange(${showRef(this.token)}, offset ${this.offset}, perm ${this.perm}, ${showDescription(this.description)}, out ${this.out})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('token', this.token, m, w);
    const token = id === null ? undefined : m.tokens.get(id);
    const pages = this.description.frames.length;
    const offsetPages = this.offset / PAGE;
    const out = makeOut(this.out);
    let expected: number = S.SUCCESS;
    if (token === undefined) expected = P(1);
    else if (this.offset % PAGE !== 0) expected = P(2);
    else if (this.perm > 3) expected = P(3);
    else if (!wellFormed(this.description)) expected = P(4);
    else if (offsetPages + pages > token.pages) expected = P(2);
    else if (this.out !== 'ok') expected = P(5);
    else {
      for (const [at, segment] of token.segments) if (at < offsetPages + pages && offsetPages < at + segment.frames.length) expected = S.IN_USE;
    }
    this.call(w, 'MapReservedLogicalRange', expected, [value, this.offset, this.perm, buildDescription(this.description, w), out]);
    if (expected !== S.SUCCESS || token === undefined) {
      this.untouched(out, 'MapReservedLogicalRange');
      return;
    }
    const segment = out.value as { OwningToken: unknown; Offset: number; Size: number };
    if (segment.OwningToken !== w.tokens.get(token.id) || segment.Offset !== this.offset || segment.Size !== pages * PAGE)
      throw new Error(`MapReservedLogicalRange: segment ${JSON.stringify({ Offset: segment.Offset, Size: segment.Size })} is not the one mapped`);
    token.segments.set(offsetPages, { frames: [...this.description.frames], perm: this.perm });
    w.segments.set(`${token.id}:${offsetPages}`, segment);
  }
}

class UnmapReserved extends Step {
  constructor(
    readonly index: number,
    readonly variant: 'exact' | 'copy' | 'other-size' | 'other-offset' | 'copied-token' | 'not-an-object',
  ) {
    super();
  }

  toString(): string {
    return `UnmapReservedLogicalRange(segment #${this.index} ${this.variant})`;
  }

  protected apply(m: Model, w: World): void {
    const live = [...w.segments.entries()].filter(([key]) => m.tokens.has(Number(key.split(':')[0])));
    const picked = live.length === 0 ? undefined : live[this.index % live.length]!;
    const segment = picked?.[1] as { OwningToken: object; Offset: number; Size: number } | undefined;
    let argument: unknown = segment;
    let valid = segment !== undefined;
    if (segment !== undefined && this.variant !== 'exact') {
      argument = {
        copy: { ...segment },
        'other-size': { ...segment, Size: segment.Size + PAGE },
        'other-offset': { ...segment, Offset: segment.Offset + PAGE },
        'copied-token': { ...segment, OwningToken: { ...segment.OwningToken } },
        'not-an-object': segment.Offset,
      }[this.variant];
      valid = this.variant === 'copy';
    }
    // Another segment may start at Offset + PAGE with the same size: then "other-offset" names it, and is valid.
    let target = picked?.[0];
    if (segment !== undefined && this.variant === 'other-offset') {
      const [token, offset] = picked![0].split(':').map(Number) as [number, number];
      const other = m.tokens.get(token)!.segments.get(offset + 1);
      if (other !== undefined && other.frames.length * PAGE === segment.Size) {
        valid = true;
        target = `${token}:${offset + 1}`;
      }
    }
    this.call(w, 'UnmapReservedLogicalRange', valid ? S.SUCCESS : S.INVALID_PARAMETER, [argument]);
    if (!valid || target === undefined) return;
    const [tokenId, offsetPages] = target.split(':').map(Number) as [number, number];
    const token = m.tokens.get(tokenId)!;
    const pages = token.segments.get(offsetPages)!.frames.length;
    token.segments.delete(offsetPages);
    m.revoke(token.domain, token.first + offsetPages, pages);
    w.segments.delete(target);
  }
}

const bytesArb = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 1, max: 16 }).map((p) => p * PAGE) },
  { weight: 1, arbitrary: fc.constantFrom(0, 100, PAGE + 1) },
);
const offsetArb = fc.oneof({ weight: 10, arbitrary: fc.nat(4).map((p) => p * PAGE) }, { weight: 1, arbitrary: fc.constant(8) });

export const tokenCommands: Array<fc.WeightedArbitrary<Step>> = [
  w(
    5,
    fc.tuple(refArb, bytesArb, placementArb, outArb).map(([domain, bytes, placement, out]) => new Reserve(domain, bytes, placement, out)),
  ),
  w(
    2,
    refArb.map((ref) => new FreeToken(ref)),
  ),
  w(
    7,
    fc
      .tuple(refArb, offsetArb, permArb, descriptionArb, outArb)
      .map(([token, offset, perm, description, out]) => new MapReserved(token, offset, perm, description, out)),
  ),
  w(
    5,
    fc
      .tuple(
        fc.nat(50),
        fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom('exact' as const, 'copy' as const) },
          { weight: 1, arbitrary: fc.constantFrom('other-size' as const, 'other-offset' as const, 'copied-token' as const, 'not-an-object' as const) },
        ),
      )
      .map(([index, variant]) => new UnmapReserved(index, variant)),
  ),
];
