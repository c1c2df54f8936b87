import fc from 'fast-check';
import type { Model } from './model.js';
import { MEMORY_PAGES, type World } from './world.js';

/**
 * How a command names a handle: a live one (by index among the live ones), a deleted one, a
 * copy of a live one, a handle of another kind, or nothing at all. Resolved when the command
 * runs, against the model and the world as they are then.
 */
export interface Ref {
  pick: 'live' | 'dead' | 'copy' | 'other-kind' | 'null';
  index: number;
}

export const refArb: fc.Arbitrary<Ref> = fc.record({
  pick: fc.oneof(
    { weight: 20, arbitrary: fc.constant('live' as const) },
    { weight: 1, arbitrary: fc.constantFrom('dead' as const, 'copy' as const, 'other-kind' as const, 'null' as const) },
  ),
  index: fc.nat(31),
});

export function showRef(ref: Ref): string {
  return ref.pick === 'live' ? `#${ref.index}` : `${ref.pick}#${ref.index}`;
}

type Kind = 'domain' | 'device' | 'token';

/** The model id a ref stands for (null: not a valid handle of that kind now) and the value to pass. */
export function resolve(kind: Kind, ref: Ref, m: Model, w: World): { id: number | null; value: unknown } {
  const live = kind === 'domain' ? [...m.domains.keys()] : kind === 'device' ? [...m.devices.keys()] : [...m.tokens.keys()];
  const handles = kind === 'domain' ? w.domains : kind === 'device' ? w.devices : w.tokens;
  const dead = kind === 'domain' ? m.deadDomains : kind === 'device' ? m.deadDevices : m.deadTokens;
  const pickFrom = <T>(list: readonly T[]): T | undefined => (list.length === 0 ? undefined : list[ref.index % list.length]);
  switch (ref.pick) {
    case 'live': {
      const id = pickFrom(live);
      return id === undefined ? { id: null, value: null } : { id, value: handles.get(id) };
    }
    case 'dead': {
      const id = pickFrom(dead);
      return { id: null, value: id === undefined ? { kind: 'IOMMU_DMA_DOMAIN', id: 1 } : w.dead.get(id) };
    }
    case 'copy': {
      const id = pickFrom(live);
      return { id: null, value: id === undefined ? {} : { ...handles.get(id) } };
    }
    case 'other-kind': {
      const others = kind === 'device' ? [...w.domains.values()] : [...w.devices.values()];
      return { id: null, value: pickFrom(others) ?? { LogicalAddressBase: 0, Size: 4096 } };
    }
    default:
      return { id: null, value: null };
  }
}

/**
 * A physical description: its form and frames. Frames come from a small pool (so that
 * identity maps and explicit logical addresses collide) or, rarely, a 2 MiB-aligned run of
 * 512 frames (large leaves, split by partial unmaps). `flaw` makes it malformed.
 */
export interface Description {
  type: 'mdl' | 'pfn' | 'contiguous';
  frames: number[];
  flaw: 'none' | 'misaligned' | 'empty' | 'beyond-memory' | 'bad-type';
}

export const FRAME_POOL = 96;

export const descriptionArb: fc.Arbitrary<Description> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .record({
        type: fc.constantFrom('mdl' as const, 'pfn' as const, 'contiguous' as const),
        start: fc.nat(FRAME_POOL - 1),
        count: fc.integer({ min: 1, max: 6 }),
        scatter: fc.array(fc.nat(FRAME_POOL - 1), { minLength: 1, maxLength: 5 }),
      })
      .map(({ type, start, count, scatter }) => ({
        type,
        frames: type === 'contiguous' || scatter.length < 2 ? Array.from({ length: count }, (_, i) => (start + i) % FRAME_POOL) : scatter,
        flaw: 'none' as const,
      }))
      .map((d) => (d.type === 'contiguous' && d.frames.some((f, i) => i > 0 && f !== d.frames[0]! + i) ? { ...d, frames: [d.frames[0]!] } : d)),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(512, 1024)
      .map((first) => ({ type: 'contiguous' as const, frames: Array.from({ length: 512 }, (_, i) => first + i), flaw: 'none' as const })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constantFrom('mdl' as const, 'pfn' as const, 'contiguous' as const),
      frames: fc.constant([3] as number[]),
      flaw: fc.constantFrom('misaligned' as const, 'empty' as const, 'beyond-memory' as const, 'bad-type' as const),
    }),
  },
);

export function showDescription(d: Description): string {
  const frames = d.frames.length > 6 ? `${d.frames[0]}..+${d.frames.length}` : d.frames.join(',');
  return `${d.type}[${frames}]${d.flaw === 'none' ? '' : `!${d.flaw}`}`;
}

/** The IOMMU_MAP_PHYSICAL_ADDRESS for `d`. */
export function buildDescription(d: Description, w: World): unknown {
  const memory = w.platform.memory;
  if (d.flaw === 'bad-type') return { MapType: 3, PfnArray: { PageFrame: d.frames, NumberOfPages: d.frames.length } };
  if (d.type === 'contiguous') {
    const base = d.flaw === 'beyond-memory' ? MEMORY_PAGES * 4096 : d.frames[0]! * 4096 + (d.flaw === 'misaligned' ? 512 : 0);
    return { MapType: 1, ContiguousRange: { Base: base, Size: d.flaw === 'empty' ? 0 : d.frames.length * 4096 } };
  }
  if (d.type === 'pfn') {
    const frames = d.flaw === 'beyond-memory' ? [MEMORY_PAGES] : d.frames;
    return { MapType: 2, PfnArray: { PageFrame: frames, NumberOfPages: d.flaw === 'empty' ? 0 : d.flaw === 'misaligned' ? 1.5 : frames.length } };
  }
  if (d.flaw === 'beyond-memory') return { MapType: 0, Mdl: { Mdl: { ByteCount: 4096, ByteOffset: 0, Pfns: [MEMORY_PAGES] } } };
  if (d.flaw === 'empty') return { MapType: 0, Mdl: { Mdl: { ByteCount: 0, ByteOffset: 0, Pfns: [] } } };
  if (d.flaw === 'misaligned') return { MapType: 0, Mdl: { Mdl: { ByteCount: 4096, ByteOffset: 16, Pfns: d.frames.slice(0, 1) } } };
  return { MapType: 0, Mdl: { Mdl: memory.mdl(d.frames) } };
}

/** Whether the contract calls `d` well formed. */
export function wellFormed(d: Description): boolean {
  return d.flaw === 'none';
}

/** A logical page choice for explicit placement: in the frame pool's range (collisions) or at the top of the space. */
export interface PagePick {
  where: 'low' | 'top' | 'misaligned';
  n: number;
}

export const pagePickArb: fc.Arbitrary<PagePick> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ where: fc.constant('low' as const), n: fc.nat(FRAME_POOL + 8) }) },
  { weight: 1, arbitrary: fc.record({ where: fc.constantFrom('top' as const, 'misaligned' as const), n: fc.integer({ min: 1, max: 4 }) }) },
);

export function showPage(p: PagePick): string {
  return p.where === 'low' ? `p${p.n}` : `${p.where}${p.n}`;
}

/** The byte address for `p` in a space of `spacePages` pages. */
export function addressOf(p: PagePick, spacePages: number): number {
  if (p.where === 'top') return (spacePages - p.n) * 4096;
  if (p.where === 'misaligned') return p.n * 4096 + 8;
  return p.n * 4096;
}
