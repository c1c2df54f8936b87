import fc from 'fast-check';
import { Divergence } from './checks.js';
import { type Block, type DomainModel, type Model, PAGE, PassThrough, READ, Translate, TranslateS1, Unmanaged, WRITE } from './model.js';
import { type Ref, refArb, resolve, showRef } from './refs.js';
import { makeOut, type OutKind, P, S, Step } from './step.js';
import type { World } from './world.js';

/** Ways CreateDomainEx's LogicalAllocatorConfig is given. */
type Allocator = { kind: 'null' } | { kind: 'none' } | { kind: 'buddy'; width: number } | { kind: 'unknown-type' };

interface Region {
  page: number;
  pages: number;
  shouldMap: boolean;
  flaw: 'none' | 'misaligned' | 'zero';
}

class CreateDomain extends Step {
  constructor(
    readonly type: number,
    readonly flags: 'zero' | 'number-zero' | 'bit-set',
    readonly allocator: Allocator,
    readonly regions: Region[],
    readonly loop: boolean,
    readonly out: OutKind,
  ) {
    super();
  }

  toString(): string {
    const a = this.allocator.kind === 'buddy' ? `buddy${this.allocator.width}` : this.allocator.kind;
    const r = this.regions.map((x) => `${x.shouldMap ? 'map' : 'hole'}@p${x.page}+${x.pages}${x.flaw === 'none' ? '' : `!${x.flaw}`}`).join(',');
    return `CreateDomainEx(type ${this.type}, ${this.flags}, ${a}, [${r}]${this.loop ? ' looped' : ''}, out ${this.out})`;
  }

  protected apply(m: Model, w: World): void {
    const { type, allocator } = this;
    const flags = this.flags === 'zero' ? { AsUlonglong: 0 } : this.flags === 'number-zero' ? 0 : { AsUlonglong: 4 };
    const config =
      allocator.kind === 'null'
        ? null
        : allocator.kind === 'none'
          ? { LogicalAllocatorType: 0 }
          : allocator.kind === 'unknown-type'
            ? { LogicalAllocatorType: 2 }
            : { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: allocator.width } };
    const nodes = this.regions.map((r) => ({
      Base: r.page * PAGE + (r.flaw === 'misaligned' ? 8 : 0),
      NumberOfPages: r.flaw === 'zero' ? 0 : r.pages,
      ShouldMap: r.shouldMap,
      RegionNext: null as unknown,
    }));
    nodes.forEach((node, i) => {
      node.RegionNext = nodes[i + 1] ?? (this.loop && nodes.length > 0 ? nodes[0] : null);
    });
    const out = makeOut(this.out);

    // The model's answer, parameter by parameter in position order, then resources.
    let expected: number = S.SUCCESS;
    const buddy = allocator.kind === 'buddy';
    const addressBits = buddy ? Math.min(allocator.width, 53) : 53;
    if (!(type >= 0 && type < 4)) expected = P(1);
    else if (this.flags === 'bit-set') expected = P(2);
    else if (
      allocator.kind !== 'null' &&
      (type !== Translate || allocator.kind === 'unknown-type' || (buddy && (allocator.width < 13 || allocator.width > 63)))
    )
      expected = P(3);
    else if (nodes.length > 0 && !regionsValid(this.regions, this.loop, type, addressBits, m.memoryPages)) expected = P(4);
    else if (this.out !== 'ok') expected = P(5);
    else if (type === TranslateS1) expected = S.NOT_SUPPORTED;
    else if (m.domains.size >= m.maxDomains) expected = S.INSUFFICIENT_RESOURCES;

    this.call(w, 'CreateDomainEx', expected, [type, flags, config, nodes[0] ?? null, out]);
    if (expected !== S.SUCCESS) {
      this.untouched(out, 'CreateDomainEx');
      return;
    }
    const domain: DomainModel = {
      id: m.nextId(),
      type,
      buddy,
      spacePages: 2 ** (addressBits - 12),
      pages: new Map(),
      blocks: [],
      devices: new Set(),
      tokens: new Set(),
      configured: null,
    };
    for (const r of this.regions) {
      if (buddy) domain.blocks.push({ first: r.page, pages: r.pages, permanent: true });
      for (let p = r.page; p < r.page + r.pages; p++) domain.pages.set(p, r.shouldMap ? { kind: 'identity', frame: p, perm: READ | WRITE } : { kind: 'hole' });
    }
    if (buddy && !this.regions.some((r) => r.page === 0)) domain.blocks.push({ first: 0, pages: 1, permanent: true });
    m.domains.set(domain.id, domain);
    w.domains.set(domain.id, out.value as object);
  }
}

function regionsValid(regions: Region[], loop: boolean, type: number, addressBits: number, memoryPages: number): boolean {
  if (type !== Translate || loop) return false;
  const seen: Region[] = [];
  for (const r of regions) {
    if (r.flaw !== 'none') return false;
    if (r.page + r.pages > 2 ** (addressBits - 12)) return false;
    if (r.shouldMap && r.page + r.pages > memoryPages) return false;
    if (seen.some((o) => r.page < o.page + o.pages && o.page < r.page + r.pages)) return false;
    seen.push(r);
  }
  return true;
}

class DeleteDomain extends Step {
  constructor(readonly domain: Ref) {
    super();
  }

  toString(): string {
    return `DeleteDomain(${showRef(this.domain)})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('domain', this.domain, m, w);
    const domain = id === null ? undefined : m.domains.get(id)!;
    const expected = domain === undefined ? P(1) : domain.devices.size > 0 || domain.tokens.size > 0 ? S.IN_USE : S.SUCCESS;
    this.call(w, 'DeleteDomain', expected, [value]);
    if (expected !== S.SUCCESS || domain === undefined) return;
    m.domains.delete(domain.id);
    m.deadDomains.push(domain.id);
    m.revoked.delete(domain.id);
    w.dead.set(domain.id, w.domains.get(domain.id)!);
    w.domains.delete(domain.id);
  }
}

/** A buddy placement answer: the block must be aligned, inside the bounds and free in the model. */
export function checkBuddyPlacement(domain: DomainModel, address: unknown, order: number, lowPage: number, highPage: number, what: string): Block {
  const size = 2 ** order;
  if (typeof address !== 'number' || address % PAGE !== 0) throw new Divergence(`${what}: placed at ${String(address)}, not a page address`);
  const first = address / PAGE;
  if (first % size !== 0) throw new Divergence(`${what}: block at page 0x${first.toString(16)} not aligned to its ${size} pages`);
  if (first < lowPage || first + size > Math.min(highPage, domain.spacePages))
    throw new Divergence(`${what}: block at page 0x${first.toString(16)} outside [0x${lowPage.toString(16)}, 0x${highPage.toString(16)})`);
  const clash = domain.blocks.find((b) => b.first < first + size && first < b.first + b.pages);
  if (clash !== undefined) throw new Divergence(`${what}: block at page 0x${first.toString(16)} overlaps a taken block at 0x${clash.first.toString(16)}`);
  return { first, pages: size, permanent: false };
}

const allocatorArb: fc.Arbitrary<Allocator> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'null' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 5, arbitrary: fc.constantFrom(13, 14, 16, 20, 48, 12, 64).map((width) => ({ kind: 'buddy' as const, width })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unknown-type' as const }) },
);

const regionArb: fc.Arbitrary<Region> = fc.record({
  page: fc.nat(40),
  pages: fc.integer({ min: 1, max: 6 }),
  shouldMap: fc.boolean(),
  flaw: fc.oneof({ weight: 12, arbitrary: fc.constant('none' as const) }, { weight: 1, arbitrary: fc.constantFrom('misaligned' as const, 'zero' as const) }),
});

export const outArb: fc.Arbitrary<OutKind> = fc.oneof(
  { weight: 30, arbitrary: fc.constant('ok' as const) },
  { weight: 1, arbitrary: fc.constantFrom('frozen' as const, 'primitive' as const) },
);

export const domainCommands: Array<fc.WeightedArbitrary<Step>> = [
  w(
    6,
    fc
      .tuple(
        fc.oneof(
          { weight: 20, arbitrary: fc.constantFrom(Translate, Translate, Translate, PassThrough, Unmanaged, TranslateS1) },
          { weight: 1, arbitrary: fc.constant(4) },
        ),
        fc.oneof(
          { weight: 10, arbitrary: fc.constantFrom('zero' as const, 'number-zero' as const) },
          { weight: 1, arbitrary: fc.constant('bit-set' as const) },
        ),
        allocatorArb,
        fc.oneof({ weight: 4, arbitrary: fc.constant([] as Region[]) }, { weight: 1, arbitrary: fc.array(regionArb, { minLength: 1, maxLength: 2 }) }),
        fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        outArb,
      )
      .map(([type, flags, allocator, regions, loop, out]) => new CreateDomain(type, flags, allocator, regions, loop, out)),
  ),
  w(
    2,
    refArb.map((ref) => new DeleteDomain(ref)),
  ),
];

/** A command arbitrary with its weight among all commands. */
export function w(weight: number, arbitrary: fc.Arbitrary<Step>): fc.WeightedArbitrary<Step> {
  return { weight, arbitrary };
}
