import t, { type Test } from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_NONE,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_INVALID_PARAMETER_6,
  STATUS_INVALID_PARAMETER_7,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type Platform,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type NTSTATUS,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { buddy, contiguous, domainOf, mdlOf, out, PAGE, pfnArray, platformFor, rng, RW, shuffle, v2Of, watch } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

const MEMORY = 16 * 1024 * 1024;

/** Each page of [logical, +pfns.length pages) translates to its frame with `access`. */
function expectMapped(t: Test, platform: Platform, domain: IOMMU_DMA_DOMAIN, logical: number, pfns: number[], access: number, what: string) {
  const seen = pfns.map((_, i) => platform.inspectTranslation(domain, logical + i * PAGE + ((i * 37) % PAGE)));
  const wanted = pfns.map((pfn, i) => ({ physicalAddress: pfn * PAGE + ((i * 37) % PAGE), access }));
  t.match(seen, wanted, `${what}: every page translates to its frame with access ${access}`);
}

function describe(platform: Platform, kind: number, pfns: number[]): IOMMU_MAP_PHYSICAL_ADDRESS {
  if (kind === 0) return mdlOf(platform, pfns);
  if (kind === 2) return pfnArray(pfns);
  return contiguous(pfns[0]! * PAGE, pfns.length * PAGE);
}

t.test('MDL, contiguous and PFN descriptions map page by page into power-of-two aligned buddy blocks', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, buddy(32));
  const random = rng(0x10c1);
  let free = platform.describeDomain(domain)!.freeLogicalPages!;
  t.equal(free, 2 ** 20 - 1, 'page 0 is not free');
  const blocks: Array<[number, number]> = [];
  for (let i = 0; i < 40; i++) {
    const kind = i % 3;
    const pages = 1 + Math.floor(random() * 9);
    const access = Math.floor(random() * 4);
    let pfns: number[];
    if (kind === 1) {
      const first = platform.memory.allocateContiguousPages(pages);
      pfns = Array.from({ length: pages }, (_, k) => first + k);
    } else {
      pfns = shuffle(random, platform.memory.allocatePages(pages));
    }
    const logical = out<number>();
    const what = `${['MDL', 'contiguous', 'PFN'][kind]} of ${pages} page(s)`;
    t.equal(V2.MapLogicalRangeEx(domain, access, describe(platform, kind, pfns), null, null, null, logical), STATUS_SUCCESS, what);
    const block = 2 ** Math.ceil(Math.log2(pages));
    t.ok(logical.value! > 0 && logical.value! % (block * PAGE) === 0, `${what}: aligned to its ${block}-page block, not page 0`);
    t.ok(logical.value! + block * PAGE <= 2 ** 32, `${what}: below 2^AddressWidth`);
    t.notOk(
      blocks.some(([a, n]) => logical.value! < a + n * PAGE && a < logical.value! + block * PAGE),
      `${what}: its block overlaps no other`,
    );
    blocks.push([logical.value!, block]);
    free -= block;
    t.equal(platform.describeDomain(domain)!.freeLogicalPages, free, `${what}: the whole block is taken`);
    expectMapped(t, platform, domain, logical.value!, pfns, access, what);
    for (let k = pages; k < block; k++) {
      t.same(platform.inspectTranslation(domain, logical.value! + k * PAGE), { faultType: TranslationFault }, `${what}: page ${k} of its block is unmapped`);
    }
    const listed = (page: number) =>
      platform
        .describeDomain(domain)!
        .ranges.some((r) => r.kind === 'logical' && r.logicalAddress <= page * PAGE && page * PAGE < r.logicalAddress + r.pages * PAGE);
    const first = logical.value! / PAGE;
    t.ok(Array.from({ length: pages }, (_, k) => first + k).every(listed), `${what}: its pages are listed as logical`);
    t.notOk(Array.from({ length: block - pages }, (_, k) => first + pages + k).some(listed), `${what}: the rest of its block is not`);
  }
});

t.test('explicit addresses in a domain without allocator; IOMMU_ACCESS_NONE maps pages without access', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, null);
  const pfns = platform.memory.allocatePages(3);
  const cases: Array<[number, IOMMU_MAP_PHYSICAL_ADDRESS, number]> = [
    [0x7000_0000, mdlOf(platform, pfns), RW],
    [0x7000_3000, pfnArray([pfns[2]!]), IOMMU_ACCESS_NONE],
    [0, contiguous(pfns[0]! * PAGE, PAGE), IOMMU_ACCESS_WRITE],
    [2 ** 53 - PAGE, pfnArray([pfns[1]!]), IOMMU_ACCESS_READ],
    [0x1234_5678_9000, { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [pfns[0]!, pfns[1]!, pfns[2]!], NumberOfPages: 2 } }, RW],
  ];
  for (const [explicit, description, access] of cases) {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, access, description, explicit, null, null, logical), STATUS_SUCCESS, `at 0x${explicit.toString(16)}`);
    t.equal(logical.value, explicit, 'LogicalAddressOut is the explicit address');
  }
  expectMapped(t, platform, domain, 0x7000_0000, pfns, RW, 'MDL');
  t.same(
    platform.inspectTranslation(domain, 0x7000_3000),
    { physicalAddress: pfns[2]! * PAGE, access: IOMMU_ACCESS_NONE, leafBytes: PAGE },
    'IOMMU_ACCESS_NONE: present, no access',
  );
  t.same(platform.inspectTranslation(domain, 0x7000_4000), { faultType: TranslationFault });
  t.same(
    platform.inspectTranslation(domain, 5),
    { physicalAddress: pfns[0]! * PAGE + 5, access: IOMMU_ACCESS_WRITE, leafBytes: PAGE },
    'logical page 0 is fine without an allocator',
  );
  t.same(
    platform.inspectTranslation(domain, 2 ** 53 - 1),
    { physicalAddress: pfns[1]! * PAGE + PAGE - 1, access: IOMMU_ACCESS_READ, leafBytes: PAGE },
    'the last safe page',
  );
  expectMapped(t, platform, domain, 0x1234_5678_9000, pfns.slice(0, 2), RW, 'NumberOfPages 2 of a 3-frame PfnArray');
  t.same(platform.inspectTranslation(domain, 0x1234_5678_b000), { faultType: TranslationFault }, 'the third frame is not mapped');
  const ranges = platform.describeDomain(domain)!.ranges;
  t.ok(
    ranges.every((r) => r.kind === 'logical'),
    'all listed as logical ranges',
  );
  t.equal(
    ranges.reduce((n, r) => n + r.pages, 0),
    8,
    '8 pages in all',
  );
});

t.test('MapLogicalRangeEx rejects each bad parameter at its position and changes nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const plain = domainOf(V2, DomainTypeTranslate, null);
  const paged = domainOf(V2, DomainTypeTranslate, buddy(32));
  const [pfn, other] = platform.memory.allocatePages(2);
  const existing = out<number>();
  t.equal(V2.MapLogicalRangeEx(plain, RW, pfnArray([pfn!]), 0x10000, null, null, existing), STATUS_SUCCESS);
  t.equal(V2.MapLogicalRangeEx(paged, RW, pfnArray([pfn!]), null, null, null, existing), STATUS_SUCCESS);
  const deleted = domainOf(V2, DomainTypeTranslate, buddy());
  t.equal(V2.DeleteDomain(deleted), STATUS_SUCCESS);
  const watchers = [watch(platform, plain, [0x10000, 0x20000, 0]), watch(platform, paged, [existing.value!, PAGE, 2 * PAGE])];
  const ok = pfnArray([other!]);
  const p = pfn! * PAGE;
  const mdl = (m: unknown) => ({ MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: m } });
  const pfnsOf = (PageFrame: unknown, NumberOfPages: unknown) => ({ MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame, NumberOfPages } });
  const descriptions: Array<[string, unknown]> = [
    ...[3, 4, -1, 1.5, '0', null, undefined].map((MapType): [string, unknown] => [
      `MapType ${String(MapType)}`,
      { MapType, PfnArray: { PageFrame: [other], NumberOfPages: 1 } },
    ]),
    ['null', null],
    ['undefined', undefined],
    ['a number', p],
    ['a string', 'x'],
    ['Base off a page', contiguous(p + 8, PAGE)],
    ['Size 0', contiguous(p, 0)],
    ['Size 100', contiguous(p, 100)],
    ['Size a page and a byte', contiguous(p, PAGE + 1)],
    ['Base negative', contiguous(-PAGE, PAGE)],
    ['Base 1.5', contiguous(1.5, PAGE)],
    ['Size NaN', contiguous(p, NaN)],
    ['Base beyond guest memory', contiguous(MEMORY, PAGE)],
    ['a range running past guest memory', contiguous(MEMORY - PAGE, 2 * PAGE)],
    ['Base as a string', { MapType: 1, ContiguousRange: { Base: String(p), Size: PAGE } }],
    ['Base as a bigint', { MapType: 1, ContiguousRange: { Base: BigInt(p), Size: PAGE } }],
    ['no ContiguousRange', { MapType: 1 }],
    ['NumberOfPages 0', pfnsOf([other], 0)],
    ['NumberOfPages beyond the array', pfnsOf([other], 2)],
    ['NumberOfPages -1', pfnsOf([other], -1)],
    ['NumberOfPages 1.5', pfnsOf([other, other], 1.5)],
    ['an empty PageFrame', pfnsOf([], 0)],
    ['a PFN of -1', pfnsOf([other, -1], 2)],
    ['a PFN of 1.5', pfnsOf([1.5], 1)],
    ['a PFN beyond guest memory', pfnsOf([other, MEMORY / PAGE], 2)],
    ['a PFN as a string', pfnsOf(['5'], 1)],
    ['a PFN of null', pfnsOf([null], 1)],
    ['PageFrame not an array', pfnsOf(other, 1)],
    ['no PfnArray', { MapType: 2 }],
    ['an MDL with ByteOffset 16', mdl(platform.memory.mdl([pfn!], PAGE - 16, 16))],
    ['an MDL of 100 bytes', mdl(platform.memory.mdl([pfn!], 100))],
    ['an MDL of a page and a half', mdl(platform.memory.mdl([pfn!, other!], PAGE + PAGE / 2))],
    ['an MDL whose Pfns disagree with ByteCount', mdl({ ByteCount: 2 * PAGE, ByteOffset: 0, Pfns: [other] })],
    ['an MDL of a whole page starting 16 bytes in', mdl({ ByteCount: PAGE, ByteOffset: 16, Pfns: [other] })],
    ['an MDL with a PFN beyond memory', mdl({ ByteCount: PAGE, ByteOffset: 0, Pfns: [MEMORY / PAGE] })],
    ['a null MDL', mdl(null)],
    ['no Mdl', { MapType: 0 }],
  ];
  const cases: Array<[string, unknown, unknown[], number]> = [
    ...(
      [
        ['a PassThrough domain', domainOf(V2, DomainTypePassThrough)],
        ['an Unmanaged domain', domainOf(V2, DomainTypeUnmanaged)],
        ['a spread copy', { ...paged }],
        ['a deleted domain', deleted],
        ['null', null],
        ['a description', ok],
      ] as const
    ).map(([what, d]): [string, unknown, unknown[], number] => [`Domain: ${what}`, d, [RW, ok, null, null, null], STATUS_INVALID_PARAMETER_1]),
    ...[4, 5, 8, 0x80000000, 0xffffffff, 2 ** 32, -1, 1.5, NaN, '1', 1n, null, undefined].map((perm): [string, unknown, unknown[], number] => [
      `Permissions ${String(perm)}`,
      paged,
      [perm, ok, null, null, null],
      STATUS_INVALID_PARAMETER_2,
    ]),
    ...descriptions.map(([what, d]): [string, unknown, unknown[], number] => [
      `description: ${what}`,
      paged,
      [RW, d, null, null, null],
      STATUS_INVALID_PARAMETER_3,
    ]),
    ...descriptions
      .slice(0, 10)
      .map(([what, d]): [string, unknown, unknown[], number] => [
        `plain, description: ${what}`,
        plain,
        [RW, d, 0x40000, null, null],
        STATUS_INVALID_PARAMETER_3,
      ]),
    ...[0x40001, 0x40800, -PAGE, 1.5, NaN, Infinity, '262144', 0x40000n, 2 ** 53, {}].map((at): [string, unknown, unknown[], number] => [
      `Explicit ${String(at)}`,
      plain,
      [RW, ok, at, null, null],
      STATUS_INVALID_PARAMETER_4,
    ]),
    ['Explicit misaligned, buddy domain', paged, [RW, ok, 0x40001, null, null], STATUS_INVALID_PARAMETER_4],
    ['Explicit range running past 2^53', plain, [RW, pfnArray([other!, other!]), 2 ** 53 - PAGE, null, null], STATUS_INVALID_PARAMETER_4],
    ...[-1, 1.5, NaN, Infinity, '0', 0n, 2 ** 53, {}].map((min): [string, unknown, unknown[], number] => [
      `Min ${String(min)}`,
      paged,
      [RW, ok, null, min, null],
      STATUS_INVALID_PARAMETER_5,
    ]),
    ...[-1, 1.5, NaN, Infinity, '0', 0x100000n, 2 ** 53, {}].map((max): [string, unknown, unknown[], number] => [
      `Max ${String(max)}`,
      paged,
      [RW, ok, null, 0, max],
      STATUS_INVALID_PARAMETER_6,
    ]),
    ['an explicit address on a buddy domain', paged, [RW, ok, 0x40000, null, null], STATUS_NOT_SUPPORTED],
    ['explicit address 0 on a buddy domain', paged, [RW, ok, 0, null, null], STATUS_NOT_SUPPORTED],
    ['an explicit address on a buddy domain, with bounds', paged, [RW, ok, 0x40000, 0, 2 ** 40], STATUS_NOT_SUPPORTED],
    ['no explicit address without an allocator', plain, [RW, ok, null, null, null], STATUS_NOT_SUPPORTED],
    ['no explicit address without an allocator, bounded', plain, [RW, ok, undefined, 0, 2 ** 40], STATUS_NOT_SUPPORTED],
  ];
  for (const [what, domain, args, expected] of cases) {
    const logical = out<number>();
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).MapLogicalRangeEx(domain, ...args, logical);
    }, `${what}: no throw`);
    t.equal(status, expected, what);
    t.strictSame(logical, {}, `${what}: LogicalAddressOut untouched`);
    for (const check of watchers) check(t, what);
  }
  for (const bad of [null, undefined, 0, 'out']) {
    t.equal(untyped(V2).MapLogicalRangeEx(paged, RW, ok, null, null, null, bad), STATUS_INVALID_PARAMETER_7, `LogicalAddressOut ${String(bad)}`);
    t.equal(untyped(V2).MapLogicalRangeEx(plain, RW, ok, 0x40000, null, null, bad), STATUS_INVALID_PARAMETER_7, `plain, LogicalAddressOut ${String(bad)}`);
    for (const check of watchers) check(t, `LogicalAddressOut ${String(bad)}`);
  }
});

t.test('a range sharing a page with anything already placed is STATUS_RESOURCE_IN_USE', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const regions = { Base: 0x80000, NumberOfPages: 2, ShouldMap: false, RegionNext: { Base: 0x90000, NumberOfPages: 2, ShouldMap: true, RegionNext: null } };
  const domain = domainOf(V2, DomainTypeTranslate, null, regions);
  const pfns = platform.memory.allocatePages(4);
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray(pfns), 0x40000, null, null, out()), STATUS_SUCCESS, 'logical [0x40000, 0x44000)');
  const identity = platform.memory.allocateContiguousPages(2);
  t.equal(V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, contiguous(identity * PAGE, 2 * PAGE)), STATUS_SUCCESS, 'identity range');
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(domain, 4 * PAGE, 0xa0000, null, null, token), STATUS_SUCCESS, 'a token at [0xa0000, 0xa4000)');
  t.equal(V2.MapReservedLogicalRange(token.value!, 0, RW, pfnArray(platform.memory.allocatePages(1)), out()), STATUS_SUCCESS, 'its first page mapped');
  const check = watch(platform, domain, [0x3f000, 0x40000, 0x43000, 0x44000, 0x80000, 0x90000, identity * PAGE, identity * PAGE + PAGE, 0xa0000, 0xa2000]);
  const two = pfnArray(platform.memory.allocatePages(2));
  const one = pfnArray(platform.memory.allocatePages(1));
  const cases: Array<[string, number, IOMMU_MAP_PHYSICAL_ADDRESS]> = [
    ['the same start', 0x40000, one],
    ['the last page', 0x43000, one],
    ['straddling the start', 0x3f000, two],
    ['straddling the end', 0x43000, two],
    ['inside', 0x41000, two],
    ['around it', 0x3f000, pfnArray(platform.memory.allocatePages(6))],
    ['a reserved hole', 0x81000, one],
    ['running into a hole', 0x7f000, two],
    ['a ShouldMap region', 0x90000, two],
    ['the identity range', identity * PAGE + PAGE, one],
    ['a mapped page of a token', 0xa0000, one],
    ['an unmapped page of a token', 0xa2000, one],
    ['running into a token', 0x9f000, two],
  ];
  for (const [what, at, description] of cases) {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, RW, description, at, null, null, logical), STATUS_RESOURCE_IN_USE, what);
    t.strictSame(logical, {}, `${what}: LogicalAddressOut untouched`);
    check(t, what);
  }
  t.equal(V2.MapLogicalRangeEx(domain, RW, two, 0x3e000, null, null, out()), STATUS_SUCCESS, 'right before it is free');
  t.equal(V2.MapLogicalRangeEx(domain, RW, one, 0x44000, null, null, out()), STATUS_SUCCESS, 'right after it is free');
  t.equal(V2.MapLogicalRangeEx(domain, RW, one, 0x82000, null, null, out()), STATUS_SUCCESS, 'right after the hole is free');
  t.equal(V2.MapLogicalRangeEx(domain, RW, one, 0xa4000, null, null, out()), STATUS_SUCCESS, 'right after the token is free');
});

t.test('Min and Max are inclusive bounds the whole buddy block must lie in', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, buddy(48));
  const frames = (n: number) => pfnArray(platform.memory.allocatePages(n));
  const placed: Array<[string, number, number | null, number | null, number]> = [
    ['exactly one page wide', 1, 0x40000, 0x40fff, 0x40000],
    ['a 4-page block must be 4-page aligned', 4, 0x41000, 0x48fff, 0x44000],
    ['an unaligned Min rounds up', 1, 0x60001, 0x61fff, 0x61000],
    ['Max alone (page 0 is never handed out)', 1, null, 0x1fff, 0x1000],
    ['Min alone', 2, 2 ** 47, null, -1],
  ];
  for (const [what, pages, min, max, expected] of placed) {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, RW, frames(pages), null, min, max, logical), STATUS_SUCCESS, what);
    if (expected >= 0) t.equal(logical.value, expected, `${what}: at 0x${expected.toString(16)}`);
    else t.ok(logical.value! >= min! && logical.value! + 2 * PAGE <= 2 ** 48 && logical.value! % (2 * PAGE) === 0, `${what}: inside [Min, 2^48), aligned`);
  }
  const check = watch(platform, domain, [0x40000, 0x44000, 0x61000, 0x1000, 0x50000, 0x70000, 0]);
  const refused: Array<[string, number, number, number]> = [
    ['Min > Max', 1, 0x70000, 0x6ffff],
    ['Min > Max by one page', 1, 0x71000, 0x70000],
    ['Max one byte short of the page', 1, 0x50000, 0x50ffe],
    ['room for 3 pages but not for their 4-page block', 3, 0x50000, 0x52fff],
    ['room for 4 pages but not aligned', 4, 0x51000, 0x54fff],
    ['only page 0 in the window', 1, 0, 0xfff],
    ['a window already taken', 1, 0x40000, 0x40fff],
    ['Min at the end of the space', 1, 2 ** 48, 2 ** 48 + PAGE],
  ];
  for (const [what, pages, min, max] of refused) {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, RW, frames(pages), null, min, max, logical), STATUS_INVALID_PARAMETER_MIX, what);
    t.strictSame(logical, {}, `${what}: LogicalAddressOut untouched`);
    check(t, what);
  }
  const plain = domainOf(V2, DomainTypeTranslate, null);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(plain, RW, frames(1), 0x100000, 0x200000, 0x300000, logical), STATUS_SUCCESS, 'Min/Max are ignored without an allocator');
  t.equal(logical.value, 0x100000);
});

t.test('out of logical space is STATUS_INSUFFICIENT_RESOURCES; so is an empty page-table pool', async (t) => {
  const platform = await platformFor(t, { workers: 0, pageTableBytes: 16 * 2048 });
  const V2 = v2Of(platform);
  const tiny = domainOf(V2, DomainTypeTranslate, buddy(14));
  const frames = (n: number) => pfnArray(platform.memory.allocatePages(n));
  const fresh = watch(platform, tiny, [0, PAGE, 2 * PAGE, 3 * PAGE]);
  t.equal(V2.MapLogicalRangeEx(tiny, RW, frames(4), null, null, null, out()), STATUS_INSUFFICIENT_RESOURCES, '4 pages: the only 4-page block holds page 0');
  fresh(t, '4 pages in a 4-page space');
  t.equal(V2.MapLogicalRangeEx(tiny, RW, frames(2), null, null, null, out()), STATUS_SUCCESS);
  t.equal(V2.MapLogicalRangeEx(tiny, RW, frames(1), null, null, null, out()), STATUS_SUCCESS);
  const full = watch(platform, tiny, [0, PAGE, 2 * PAGE, 3 * PAGE]);
  for (const pages of [1, 2]) {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(tiny, RW, frames(pages), null, null, null, logical), STATUS_INSUFFICIENT_RESOURCES, `${pages} page(s) in a full space`);
    t.strictSame(logical, {});
    full(t, `${pages} page(s) in a full space`);
  }
  t.equal(V2.MapLogicalRangeEx(tiny, RW, frames(1), null, 0, 2 ** 14 - 1, out()), STATUS_INVALID_PARAMETER_MIX, 'bounded: no room inside them');

  // 15 usable tables; a 4-level domain needs 3 more for each new 512 GiB region.
  const wide = domainOf(V2, DomainTypeTranslate, buddy(48));
  let status: NTSTATUS = STATUS_SUCCESS;
  let region = 0;
  let before = watch(platform, wide, []);
  while (status === STATUS_SUCCESS && region < 16) {
    before = watch(platform, wide, [region * 2 ** 39]);
    status = V2.MapLogicalRangeEx(wide, RW, frames(1), null, region * 2 ** 39, null, out());
    region++;
  }
  t.equal(status, STATUS_INSUFFICIENT_RESOURCES, `the pool ran dry after ${region - 1} regions`);
  before(t, 'no page table left');
  t.equal(V2.MapLogicalRangeEx(wide, RW, frames(1), null, null, (region - 1) * 2 ** 39 - 1, out()), STATUS_SUCCESS, 'an existing region still has room');
});
