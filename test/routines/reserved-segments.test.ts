import t from 'tap';
import type { Test } from 'tap';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_NONE,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMax,
  MapPhysicalAddressTypeMdl,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type Platform,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
} from '../../machine/index.js';
import { buddy, contiguous, mdlOf, ok, out, PAGE, pfnArray, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/** MapReservedLogicalRange / UnmapReservedLogicalRange: parameters, segments, overlap, exactness. */

type Segment = IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;

interface Setup {
  platform: Platform;
  V2: DMA_IOMMU_INTERFACE_V2;
  domain: IOMMU_DMA_DOMAIN;
  token: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  /** Logical address of each token page. */
  pages: number[];
}

async function tokenOf(t: Test, pages: number, allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null = buddy(), explicit: number | null = null): Promise<Setup> {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, allocator, null, domain), 'CreateDomainEx');
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(domain.value!, pages * PAGE, explicit, null, null, token), 'ReserveLogicalAddressRange');
  const base = token.value!.LogicalAddressBase;
  return { platform, V2, domain: domain.value!, token: token.value!, pages: Array.from({ length: pages }, (_, i) => base + i * PAGE) };
}

function snapshot({ platform, domain, pages }: Setup) {
  return {
    domain: platform.describeDomain(domain),
    tables: platform.pageTablesInUse,
    translations: pages.map((address) => platform.inspectTranslation(domain, address)),
  };
}

function rejected(t: Test, setup: Setup, call: (outParam: object) => number, expected: number, what: string): void {
  const before = snapshot(setup);
  const outParam = {};
  t.equal(call(outParam), expected, what);
  t.strictSame(outParam, {}, `${what}: MappedSegment untouched`);
  t.strictSame(snapshot(setup), before, `${what}: nothing changed`);
}

function mapped(physicalAddress: number, access: number) {
  return { physicalAddress, access, leafBytes: PAGE };
}

const UNMAPPED = { faultType: TranslationFault };

t.test('each kind of physical description maps at base + Offset and fills MappedSegment with { OwningToken, Offset, Size }', async (t) => {
  const setup = await tokenOf(t, 16);
  const { platform, V2, domain, token, pages } = setup;
  const scattered = platform.memory.allocatePages(3);
  const run = platform.memory.allocateContiguousPages(2);
  const viaMdl = platform.memory.allocatePages(2);

  const a = out<Segment>();
  t.equal(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, pfnArray(scattered), a), STATUS_SUCCESS);
  t.strictSame(Object.keys(a.value!).sort(), ['Offset', 'OwningToken', 'Size']);
  t.equal(a.value!.OwningToken, token, 'OwningToken is the token itself');
  t.strictSame([a.value!.Offset, a.value!.Size], [0, 3 * PAGE]);
  const b = out<Segment>();
  t.equal(V2.MapReservedLogicalRange(token, 5 * PAGE, IOMMU_ACCESS_WRITE, contiguous(run * PAGE, 2 * PAGE), b), STATUS_SUCCESS);
  t.strictSame([b.value!.OwningToken === token, b.value!.Offset, b.value!.Size], [true, 5 * PAGE, 2 * PAGE]);
  const c = out<Segment>();
  t.equal(
    V2.MapReservedLogicalRange(token, 14 * PAGE, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, mdlOf(platform, viaMdl), c),
    STATUS_SUCCESS,
    'the last two pages',
  );
  t.strictSame([c.value!.Offset, c.value!.Size], [14 * PAGE, 2 * PAGE]);
  const d = out<Segment>();
  t.equal(
    V2.MapReservedLogicalRange(token, 3 * PAGE, IOMMU_ACCESS_NONE, pfnArray([scattered[0]!]), d),
    STATUS_SUCCESS,
    'IOMMU_ACCESS_NONE is a permission, not a reserved bit',
  );

  const expected = pages.map(() => UNMAPPED as object);
  scattered.forEach((pfn, i) => {
    expected[i] = mapped(pfn * PAGE, IOMMU_ACCESS_READ);
  });
  expected[3] = mapped(scattered[0]! * PAGE, IOMMU_ACCESS_NONE);
  expected[5] = mapped(run * PAGE, IOMMU_ACCESS_WRITE);
  expected[6] = mapped((run + 1) * PAGE, IOMMU_ACCESS_WRITE);
  expected[14] = mapped(viaMdl[0]! * PAGE, 3);
  expected[15] = mapped(viaMdl[1]! * PAGE, 3);
  t.strictSame(
    pages.map((address) => platform.inspectTranslation(domain, address)),
    expected,
    'every token page translates as mapped',
  );
  t.strictSame(platform.inspectTranslation(domain, pages[6]! + 123), mapped((run + 1) * PAGE + 123, IOMMU_ACCESS_WRITE), 'offsets inside a page carry over');

  for (const segment of [a, b, c, d]) t.equal(V2.UnmapReservedLogicalRange(segment.value!), STATUS_SUCCESS);
  t.strictSame(
    pages.map((address) => platform.inspectTranslation(domain, address)),
    pages.map(() => UNMAPPED),
    'every unmap removed its translations',
  );
});

t.test('bad token, Offset, permissions and descriptions are rejected at their positions and change nothing', async (t) => {
  const setup = await tokenOf(t, 8);
  const { platform, V2, token } = setup;
  const [pfn] = platform.memory.allocatePages(1);
  const onePage = pfnArray([pfn!]);
  ok(V2.MapReservedLogicalRange(token, 2 * PAGE, IOMMU_ACCESS_READ, onePage, out()), 'MapReservedLogicalRange');
  const other = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(setup.domain, PAGE, null, null, null, other), 'ReserveLogicalAddressRange');
  ok(V2.FreeReservedLogicalAddressRange(other.value!), 'FreeReservedLogicalAddressRange');

  for (const [what, handle] of [
    ['a freed token', other.value],
    ['a copy of the token', { ...token }],
    ['a token-shaped object', { LogicalAddressBase: token.LogicalAddressBase, Size: token.Size }],
    ['null', null],
    ['a domain handle', setup.domain],
  ] as const) {
    rejected(t, setup, (o) => untyped(V2).MapReservedLogicalRange(handle, 0, IOMMU_ACCESS_READ, onePage, o), STATUS_INVALID_PARAMETER_1, what);
  }
  for (const offset of [1, PAGE / 2, 3 * PAGE + 8, -PAGE, 1.5, NaN, '0', null]) {
    rejected(
      t,
      setup,
      (o) => untyped(V2).MapReservedLogicalRange(token, offset, IOMMU_ACCESS_READ, onePage, o),
      STATUS_INVALID_PARAMETER_2,
      `Offset ${String(offset)}`,
    );
  }
  const three = platform.memory.allocatePages(3);
  for (const [what, offset, description] of [
    ['Offset = Size', 8 * PAGE, onePage],
    ['Offset far beyond Size', 2 ** 40, onePage],
    ['Offset + length one page past Size', 6 * PAGE, pfnArray(three)],
    ['a description larger than the token', 0, contiguous(0, 9 * PAGE)],
  ] as const) {
    rejected(t, setup, (o) => V2.MapReservedLogicalRange(token, offset, IOMMU_ACCESS_READ, description, o), STATUS_INVALID_PARAMETER_2, what);
  }
  for (const permissions of [4, 8, 0x10 | IOMMU_ACCESS_READ, 0x8000_0000, -1, 1.5, '1']) {
    rejected(
      t,
      setup,
      (o) => untyped(V2).MapReservedLogicalRange(token, 0, permissions, onePage, o),
      STATUS_INVALID_PARAMETER_3,
      `Permissions ${String(permissions)}`,
    );
  }
  const mdlWithOffset = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl([pfn!], PAGE - 16, 16) } };
  const shortMdl = { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl([pfn!], PAGE - 16, 0) } };
  for (const [what, description] of [
    ['a contiguous range off a page boundary', contiguous(pfn! * PAGE + 0x800, PAGE)],
    ['a contiguous range that is not whole pages', contiguous(pfn! * PAGE, PAGE + 0x10)],
    ['an empty contiguous range', contiguous(pfn! * PAGE, 0)],
    ['an MDL starting inside its first page', mdlWithOffset],
    ['an MDL that is not whole pages', shortMdl],
    ['a PFN array of 0 pages', { MapType: 2, PfnArray: { PageFrame: [pfn], NumberOfPages: 0 } }],
    ['MapType = MapPhysicalAddressTypeMax', { MapType: MapPhysicalAddressTypeMax, ContiguousRange: { Base: 0, Size: PAGE } }],
    ['MapType -1', { MapType: -1, ContiguousRange: { Base: 0, Size: PAGE } }],
    ['null', null],
  ] as const) {
    rejected(t, setup, (o) => untyped(V2).MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, description, o), STATUS_INVALID_PARAMETER_4, what);
  }
  const good = out<Segment>();
  t.equal(
    V2.MapReservedLogicalRange(
      token,
      0,
      IOMMU_ACCESS_READ,
      { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: pfn! * PAGE, Size: PAGE } },
      good,
    ),
    STATUS_SUCCESS,
    'the same token still maps',
  );
});

t.test('a range sharing a page with a mapped part of the token is STATUS_RESOURCE_IN_USE', async (t) => {
  const setup = await tokenOf(t, 16, null, 0x4000_0000);
  const { platform, V2, token } = setup;
  const frames = platform.memory.allocateContiguousPages(16);
  const range = (first: number, count: number) => contiguous((frames + first) * PAGE, count * PAGE);
  ok(V2.MapReservedLogicalRange(token, 4 * PAGE, IOMMU_ACCESS_READ, range(4, 4), out()), 'map pages 4..7');
  ok(V2.MapReservedLogicalRange(token, 10 * PAGE, IOMMU_ACCESS_READ, range(10, 1), out()), 'map page 10');
  for (const [what, first, count] of [
    ['the same pages', 4, 4],
    ['its first page only', 4, 1],
    ['its last page only', 7, 1],
    ['a range ending on its first page', 2, 3],
    ['a range starting on its last page', 7, 2],
    ['a range around it', 3, 6],
    ['a range covering two mapped parts', 6, 6],
  ] as const) {
    rejected(t, setup, (o) => V2.MapReservedLogicalRange(token, first * PAGE, IOMMU_ACCESS_WRITE, range(first, count), o), STATUS_RESOURCE_IN_USE, what);
  }
  t.equal(
    V2.MapReservedLogicalRange(token, 8 * PAGE, IOMMU_ACCESS_WRITE, range(8, 2), out()),
    STATUS_SUCCESS,
    'the gap between two mapped parts fills exactly',
  );
  t.equal(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_WRITE, range(0, 4), out()), STATUS_SUCCESS, 'and so does the start of the token');
});

t.test('UnmapReservedLogicalRange takes exactly a currently mapped segment, else STATUS_INVALID_PARAMETER and nothing is removed', async (t) => {
  const setup = await tokenOf(t, 16);
  const { platform, V2, domain, token, pages } = setup;
  const frames = platform.memory.allocateContiguousPages(16);
  const a = out<Segment>();
  const b = out<Segment>();
  ok(V2.MapReservedLogicalRange(token, 2 * PAGE, IOMMU_ACCESS_READ, contiguous((frames + 2) * PAGE, 3 * PAGE), a), 'map pages 2..4');
  ok(V2.MapReservedLogicalRange(token, 5 * PAGE, IOMMU_ACCESS_READ, contiguous((frames + 5) * PAGE, 2 * PAGE), b), 'map pages 5..6');
  const other = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(domain, 16 * PAGE, null, null, null, other), 'a second token');
  const seg = a.value!;
  const unmap = (segment: unknown) => () => untyped(V2).UnmapReservedLogicalRange(segment);

  for (const [what, segment] of [
    ['a smaller Size', { ...seg, Size: 2 * PAGE }],
    ['a larger Size', { ...seg, Size: 4 * PAGE }],
    ['a Size that is not whole pages', { ...seg, Size: 3 * PAGE - 1 }],
    ['an Offset inside the segment', { ...seg, Offset: 3 * PAGE, Size: 2 * PAGE }],
    ['an Offset one page early', { ...seg, Offset: PAGE }],
    ['an unaligned Offset', { ...seg, Offset: 2 * PAGE + 1 }],
    ['two adjacent segments as one', { OwningToken: token, Offset: 2 * PAGE, Size: 5 * PAGE }],
    ['an unmapped part of the token', { OwningToken: token, Offset: 8 * PAGE, Size: PAGE }],
    ['the right offsets in another token', { ...seg, OwningToken: other.value }],
    ['a copy of the owning token', { ...seg, OwningToken: { ...token } }],
    ['no OwningToken', { Offset: seg.Offset, Size: seg.Size }],
    ['a negative Size', { ...seg, Size: -3 * PAGE }],
    ['null', null],
    ['a number', 42],
  ] as const) {
    rejected(t, setup, unmap(segment), STATUS_INVALID_PARAMETER, what);
  }
  t.equal(V2.UnmapReservedLogicalRange({ ...seg }), STATUS_SUCCESS, 'a copy with the same contents names the same segment');
  t.strictSame(
    [2, 3, 4].map((i) => platform.inspectTranslation(domain, pages[i]!)),
    [UNMAPPED, UNMAPPED, UNMAPPED],
    'its pages are gone',
  );
  t.strictSame(platform.inspectTranslation(domain, pages[5]!), mapped((frames + 5) * PAGE, IOMMU_ACCESS_READ), 'the neighbour stays');
  rejected(t, setup, unmap(seg), STATUS_INVALID_PARAMETER, 'unmapping the same segment twice');
  t.equal(V2.UnmapReservedLogicalRange(b.value!), STATUS_SUCCESS);
  ok(V2.FreeReservedLogicalAddressRange(token), 'FreeReservedLogicalAddressRange');
  rejected(t, setup, unmap(b.value), STATUS_INVALID_PARAMETER, 'a segment of a freed token');
});

t.test('segments remap after unmapping, in other shapes than before', async (t) => {
  const setup = await tokenOf(t, 8);
  const { platform, V2, domain, token, pages } = setup;
  const frames = platform.memory.allocatePages(8);
  const whole = out<Segment>();
  ok(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, pfnArray(frames), whole), 'map the whole token');
  t.strictSame([whole.value!.Offset, whole.value!.Size], [0, 8 * PAGE]);
  t.equal(V2.UnmapReservedLogicalRange(whole.value!), STATUS_SUCCESS);
  const halves = [out<Segment>(), out<Segment>()];
  t.equal(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_WRITE, pfnArray(frames.slice(4)), halves[0]!), STATUS_SUCCESS);
  t.equal(V2.MapReservedLogicalRange(token, 4 * PAGE, IOMMU_ACCESS_WRITE, pfnArray(frames.slice(0, 4)), halves[1]!), STATUS_SUCCESS);
  t.strictSame(
    pages.map((address) => platform.inspectTranslation(domain, address)),
    [...frames.slice(4), ...frames.slice(0, 4)].map((pfn) => mapped(pfn * PAGE, IOMMU_ACCESS_WRITE)),
    'the new segments translate, not the old one',
  );
  rejected(t, setup, () => V2.UnmapReservedLogicalRange(whole.value!), STATUS_INVALID_PARAMETER, 'the old whole-token segment is not a current segment');
});
