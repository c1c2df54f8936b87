import fc from 'fast-check';
import { outArb, w } from './domain-commands.js';
import { type DomainModel, type Model, PAGE, PassThrough, Translate } from './model.js';
import { explicitValid, explicitValue, type Placement, placed, placementArb, placementStatus, showPlacement } from './placement.js';
import { buildDescription, type Description, descriptionArb, type Ref, refArb, resolve, showDescription, showRef, wellFormed } from './refs.js';
import { makeOut, type OutKind, P, S, Step } from './step.js';
import type { World } from './world.js';

/** Permissions: READ/WRITE bits, IOMMU_ACCESS_NONE, or (rarely) a reserved bit. */
export const permArb = fc.oneof({ weight: 12, arbitrary: fc.constantFrom(1, 2, 3, 3, 0) }, { weight: 1, arbitrary: fc.constant(4) });

function translateDomain(m: Model, w: World, ref: Ref): { domain: DomainModel | undefined; value: unknown } {
  const { id, value } = resolve('domain', ref, m, w);
  const domain = id === null ? undefined : m.domains.get(id);
  return { domain, value };
}

class MapLogical extends Step {
  constructor(
    readonly domain: Ref,
    readonly perm: number,
    readonly description: Description,
    readonly placement: Placement,
    readonly out: OutKind,
  ) {
    super();
  }

  toString(): string {
    return `MapLogicalRangeEx(${showRef(this.domain)}, perm ${this.perm}, ${showDescription(this.description)}, ${showPlacement(this.placement)}, out ${this.out})`;
  }

  protected apply(m: Model, w: World): void {
    const { domain, value } = translateDomain(m, w, this.domain);
    const pages = this.description.frames.length;
    const out = makeOut(this.out);
    let expected: number = S.SUCCESS;
    if (domain === undefined || domain.type !== Translate) expected = P(1);
    else if (this.perm > 3) expected = P(2);
    else if (!wellFormed(this.description)) expected = P(3);
    else if (!explicitValid(this.placement, domain.spacePages)) expected = P(4);
    else if (this.out !== 'ok') expected = P(7);
    else expected = placementStatus(domain, pages, this.placement, P(4), (first, n) => m.occupied(domain, first, n));
    const spacePages = domain?.spacePages ?? 2 ** 41;
    this.call(w, 'MapLogicalRangeEx', expected, [
      value,
      this.perm,
      buildDescription(this.description, w),
      explicitValue(this.placement, spacePages),
      this.placement.min,
      this.placement.max,
      out,
    ]);
    if (expected !== S.SUCCESS || domain === undefined) {
      this.untouched(out, 'MapLogicalRangeEx');
      return;
    }
    const { first, block } = placed(domain, pages, this.placement, out.value, 'MapLogicalRangeEx');
    if (block !== null) domain.blocks.push(block);
    this.description.frames.forEach((frame, i) => {
      domain.pages.set(first + i, { kind: 'logical', frame, perm: this.perm, block });
    });
  }
}

/** Which logical pages an unmap names: from a page the domain holds (shifted), or an arbitrary one. */
interface Target {
  from: 'held' | 'any';
  index: number;
  shift: number;
  pages: number;
}

const targetArb: fc.Arbitrary<Target> = fc.record({
  from: fc.oneof({ weight: 6, arbitrary: fc.constant('held' as const) }, { weight: 1, arbitrary: fc.constant('any' as const) }),
  index: fc.nat(200),
  shift: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -2, max: 2 }) }),
  pages: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 512) }),
});

function targetPage(domain: DomainModel | undefined, t: Target, kind: 'logical' | 'identity'): number {
  if (domain === undefined || t.from === 'any') return Math.max(0, t.index + t.shift);
  const held = [...domain.pages].filter(([, entry]) => entry.kind === kind).map(([page]) => page);
  if (held.length === 0) return Math.max(0, t.index + t.shift);
  return Math.max(0, held.sort((a, b) => a - b)[t.index % held.length]! + t.shift);
}

class UnmapLogical extends Step {
  constructor(
    readonly domain: Ref,
    readonly target: Target,
  ) {
    super();
  }

  toString(): string {
    return `UnmapLogicalRange(${showRef(this.domain)}, ${JSON.stringify(this.target)})`;
  }

  protected apply(m: Model, w: World): void {
    const { domain, value } = translateDomain(m, w, this.domain);
    const first = targetPage(domain, this.target, 'logical');
    const pages = this.target.pages;
    let expected: number = S.SUCCESS;
    if (domain === undefined || domain.type !== Translate) expected = P(1);
    else if (!Number.isSafeInteger(first * PAGE)) expected = P(2);
    else if (pages === 0) expected = P(3);
    else if (first + pages > domain.spacePages) expected = S.INVALID_PARAMETER;
    else {
      for (let p = first; p < first + pages; p++) if (domain.pages.get(p)?.kind !== 'logical') expected = S.INVALID_PARAMETER;
    }
    this.call(w, 'UnmapLogicalRange', expected, [value, first * PAGE, pages]);
    if (expected !== S.SUCCESS || domain === undefined) return;
    for (let p = first; p < first + pages; p++) domain.pages.delete(p);
    m.revoke(domain.id, first, pages);
    m.releaseEmptyBlocks(domain);
  }
}

class MapIdentity extends Step {
  constructor(
    readonly domain: Ref,
    readonly perm: number,
    readonly description: Description,
  ) {
    super();
  }

  toString(): string {
    return `MapIdentityRangeEx(${showRef(this.domain)}, perm ${this.perm}, ${showDescription(this.description)})`;
  }

  protected apply(m: Model, w: World): void {
    const { domain, value } = translateDomain(m, w, this.domain);
    const frames = this.description.frames;
    let expected: number = S.SUCCESS;
    if (domain === undefined || (domain.type !== Translate && domain.type !== PassThrough)) expected = P(1);
    else if (this.perm > 3) expected = P(2);
    else if (!wellFormed(this.description)) expected = P(3);
    else if (domain.type === PassThrough) expected = S.SUCCESS;
    else if (domain.buddy) expected = S.NOT_SUPPORTED;
    else if (new Set(frames).size !== frames.length) expected = S.IN_USE;
    else if (frames.some((f) => domain.pages.has(f))) expected = S.IN_USE;
    this.call(w, 'MapIdentityRangeEx', expected, [value, this.perm, buildDescription(this.description, w)]);
    if (expected !== S.SUCCESS || domain === undefined || domain.type === PassThrough) return;
    for (const frame of frames) domain.pages.set(frame, { kind: 'identity', frame, perm: this.perm });
  }
}

class UnmapIdentity extends Step {
  constructor(
    readonly domain: Ref,
    readonly description: Description,
    readonly fromHeld: number | null,
  ) {
    super();
  }

  toString(): string {
    return `UnmapIdentityRangeEx(${showRef(this.domain)}, ${this.fromHeld === null ? showDescription(this.description) : `held#${this.fromHeld}+${this.description.frames.length}`})`;
  }

  protected apply(m: Model, w: World): void {
    const { domain, value } = translateDomain(m, w, this.domain);
    // Mostly a run starting at a page the domain holds identity mapped, so that unmaps succeed.
    let description = this.description;
    if (this.fromHeld !== null && domain !== undefined && wellFormed(description)) {
      const first = targetPage(domain, { from: 'held', index: this.fromHeld, shift: 0, pages: 1 }, 'identity');
      description = { ...description, type: 'contiguous', frames: description.frames.map((_, i) => first + i) };
    }
    const frames = description.frames;
    let expected: number = S.SUCCESS;
    if (domain === undefined || (domain.type !== Translate && domain.type !== PassThrough)) expected = P(1);
    else if (!wellFormed(description) || frames.some((f) => f >= m.memoryPages)) expected = P(2);
    else if (domain.type === PassThrough) expected = S.SUCCESS;
    else if (new Set(frames).size !== frames.length) expected = S.INVALID_PARAMETER;
    else if (frames.some((f) => domain.pages.get(f)?.kind !== 'identity')) expected = S.INVALID_PARAMETER;
    this.call(w, 'UnmapIdentityRangeEx', expected, [value, buildDescription(description, w)]);
    if (expected !== S.SUCCESS || domain === undefined || domain.type === PassThrough) return;
    for (const frame of frames) {
      domain.pages.delete(frame);
      m.revoke(domain.id, frame, 1);
    }
  }
}

export const mappingCommands: Array<fc.WeightedArbitrary<Step>> = [
  w(
    12,
    fc
      .tuple(refArb, permArb, descriptionArb, placementArb, outArb)
      .map(([domain, perm, description, placement, out]) => new MapLogical(domain, perm, description, placement, out)),
  ),
  w(
    7,
    fc.tuple(refArb, targetArb).map(([domain, target]) => new UnmapLogical(domain, target)),
  ),
  w(
    5,
    fc.tuple(refArb, permArb, descriptionArb).map(([domain, perm, description]) => new MapIdentity(domain, perm, description)),
  ),
  w(
    4,
    fc.tuple(refArb, descriptionArb, fc.option(fc.nat(100), { freq: 4 })).map(([domain, description, held]) => new UnmapIdentity(domain, description, held)),
  ),
];
