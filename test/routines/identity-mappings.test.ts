import t from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type Platform,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
} from '../../machine/index.js';
import { buddy, contiguous, domainOf, mdlOf, out, PAGE, pfnArray, platformFor, rng, RW, translatesTo, v2Of, watch } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

const MEMORY = 16 * 1024 * 1024;

/** Descriptions that are malformed in every way the contract names (misaligned, not whole pages, unknown MapType, outside guest memory). */
function badDescriptions(platform: Platform, pfn: number): Array<[string, unknown]> {
  const p = pfn * PAGE;
  const pfns = (PageFrame: unknown, NumberOfPages: unknown) => ({ MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame, NumberOfPages } });
  const mdl = (m: unknown) => ({ MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: m } });
  return [
    ...[3, -1, 1.5, '1', undefined].map((MapType): [string, unknown] => [`MapType ${String(MapType)}`, { MapType, ContiguousRange: { Base: p, Size: PAGE } }]),
    ['null', null],
    ['a number', p],
    ['Base off a page', contiguous(p + 1, PAGE)],
    ['Size 0', contiguous(p, 0)],
    ['Size not whole pages', contiguous(p, PAGE + 512)],
    ['Base negative', contiguous(-PAGE, PAGE)],
    ['beyond guest memory', contiguous(MEMORY - PAGE, 2 * PAGE)],
    ['NumberOfPages 0', pfns([pfn], 0)],
    ['NumberOfPages beyond the array', pfns([pfn], 2)],
    ['a PFN of -1', pfns([-1], 1)],
    ['a PFN beyond guest memory', pfns([MEMORY / PAGE], 1)],
    ['a PFN of 2.5', pfns([2.5], 1)],
    ['an MDL with ByteOffset 8', mdl(platform.memory.mdl([pfn], PAGE - 8, 8))],
    ['an MDL of 10 bytes', mdl(platform.memory.mdl([pfn], 10))],
    ['a null MDL', mdl(null)],
  ];
}

t.test('MapIdentityRangeEx maps each described page at its own physical address', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, null);
  const run = platform.memory.allocateContiguousPages(3);
  const scattered = [run + 10, run + 5, run + 20];
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(run * PAGE, 3 * PAGE)), STATUS_SUCCESS, 'contiguous');
  t.equal(V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, pfnArray(scattered)), STATUS_SUCCESS, 'a PFN array out of order');
  t.equal(V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_WRITE, mdlOf(platform, [run + 7, run + 8])), STATUS_SUCCESS, 'an MDL');
  const expected: Array<[number, number]> = [
    [run, RW],
    [run + 1, RW],
    [run + 2, RW],
    [run + 5, IOMMU_ACCESS_READ],
    [run + 7, IOMMU_ACCESS_WRITE],
    [run + 8, IOMMU_ACCESS_WRITE],
    [run + 10, IOMMU_ACCESS_READ],
    [run + 20, IOMMU_ACCESS_READ],
  ];
  for (const [page, access] of expected) {
    t.same(translatesTo(platform, domain, page * PAGE + 99), [page * PAGE + 99, access], `page 0x${page.toString(16)} maps to itself`);
  }
  for (const page of [run - 1, run + 3, run + 4, run + 6, run + 9, run + 11, run + 19, run + 21]) {
    t.same(translatesTo(platform, domain, page * PAGE), { faultType: TranslationFault }, `page 0x${page.toString(16)} is not mapped`);
  }
  t.same(
    platform.describeDomain(domain)!.ranges.map((r) => r.kind),
    Array(5).fill('identity'),
  );
  t.same(
    platform.describeDomain(domain)!.ranges.reduce((n, r) => n + r.pages, 0),
    8,
  );
});

t.test('PassThrough: map and unmap succeed and do nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypePassThrough);
  const [pfn] = platform.memory.allocatePages(1);
  const check = watch(platform, domain, [pfn! * PAGE, 0x123000]);
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(pfn! * PAGE, PAGE)), STATUS_SUCCESS, 'map');
  check(t, 'map on PassThrough');
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(pfn! * PAGE, PAGE)), STATUS_SUCCESS, 'the same pages again');
  t.equal(V2.UnmapIdentityRangeEx(domain, contiguous(0x123000, PAGE)), STATUS_SUCCESS, 'unmap of pages never mapped');
  t.equal(V2.UnmapIdentityRangeEx(domain, pfnArray([pfn!, pfn!])), STATUS_SUCCESS, 'unmap of a repeated page');
  check(t, 'unmap on PassThrough');
  t.equal(V2.MapIdentityRangeEx(domain, 4, contiguous(pfn! * PAGE, PAGE)), STATUS_INVALID_PARAMETER_2, 'bad permissions are still refused');
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(pfn! * PAGE + 1, PAGE)), STATUS_INVALID_PARAMETER_3, 'a bad description is still refused');
  t.equal(V2.UnmapIdentityRangeEx(domain, contiguous(pfn! * PAGE, 1)), STATUS_INVALID_PARAMETER_2, 'by unmap too');
});

t.test('MapIdentityRangeEx rejects bad parameters, buddy domains and overlaps, changing nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const regions = { Base: 0x200000, NumberOfPages: 2, ShouldMap: true, RegionNext: { Base: 0x300000, NumberOfPages: 2, ShouldMap: false, RegionNext: null } };
  const domain = domainOf(V2, DomainTypeTranslate, null, regions);
  const paged = domainOf(V2, DomainTypeTranslate, buddy());
  const deleted = domainOf(V2, DomainTypeTranslate, null);
  t.equal(V2.DeleteDomain(deleted), STATUS_SUCCESS);
  const run = platform.memory.allocateContiguousPages(4);
  const [free] = platform.memory.allocatePages(1);
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(run * PAGE, 2 * PAGE)), STATUS_SUCCESS);
  const logicalFrame = platform.memory.allocateContiguousPages(1);
  t.equal(
    V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, pfnArray([free!]), logicalFrame * PAGE, null, null, out()),
    STATUS_SUCCESS,
    'a logical mapping at a physical address',
  );
  const tokenFrame = platform.memory.allocateContiguousPages(2);
  t.equal(V2.ReserveLogicalAddressRange(domain, 2 * PAGE, tokenFrame * PAGE, null, null, out()), STATUS_SUCCESS, 'a token over physical addresses');
  const probes = [run, run + 1, run + 2, free!, logicalFrame, 0x200, 0x201, 0x300, tokenFrame, tokenFrame + 1].map((p) => p * PAGE);
  const checks = [watch(platform, domain, probes), watch(platform, paged, probes)];
  const ok = pfnArray([free!]);
  const cases: Array<[string, unknown, unknown, unknown, number]> = [
    ...(
      [
        ['an Unmanaged domain', domainOf(V2, DomainTypeUnmanaged)],
        ['a spread copy', { ...domain }],
        ['a deleted domain', deleted],
        ['null', null],
      ] as const
    ).map(([what, d]): [string, unknown, unknown, unknown, number] => [`Domain: ${what}`, d, RW, ok, STATUS_INVALID_PARAMETER_1]),
    ...[4, 0x80000000, -1, 0.5, '3', null].map((perm): [string, unknown, unknown, unknown, number] => [
      `Permissions ${String(perm)}`,
      domain,
      perm,
      ok,
      STATUS_INVALID_PARAMETER_2,
    ]),
    ...badDescriptions(platform, free!).map(([what, d]): [string, unknown, unknown, unknown, number] => [
      `description: ${what}`,
      domain,
      RW,
      d,
      STATUS_INVALID_PARAMETER_3,
    ]),
    ['a buddy domain', paged, RW, ok, STATUS_NOT_SUPPORTED],
    ['pages already identity mapped', domain, RW, contiguous(run * PAGE, PAGE), STATUS_RESOURCE_IN_USE],
    ['overlapping the end of an identity range', domain, RW, contiguous((run + 1) * PAGE, 2 * PAGE), STATUS_RESOURCE_IN_USE],
    ['a free page, then an identity mapped one', domain, RW, pfnArray([run + 3, run]), STATUS_RESOURCE_IN_USE],
    ['a page used by a logical mapping', domain, RW, pfnArray([logicalFrame]), STATUS_RESOURCE_IN_USE],
    ['a ShouldMap region', domain, RW, contiguous(0x201000, PAGE), STATUS_RESOURCE_IN_USE],
    ['a reserved hole', domain, RW, contiguous(0x2ff000, 2 * PAGE), STATUS_RESOURCE_IN_USE],
    ['the same page twice in one description', domain, RW, pfnArray([run + 3, run + 3]), STATUS_RESOURCE_IN_USE],
    ['pages reserved by a token', domain, RW, contiguous(tokenFrame * PAGE, 2 * PAGE), STATUS_RESOURCE_IN_USE],
  ];
  for (const [what, d, perm, description, expected] of cases) {
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).MapIdentityRangeEx(d, perm, description);
    }, `${what}: no throw`);
    t.equal(status, expected, what);
    for (const check of checks) check(t, what);
  }
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous((run + 2) * PAGE, 2 * PAGE)), STATUS_SUCCESS, 'right after the identity range is free');
});

t.test('UnmapIdentityRangeEx: every page must be identity mapped, else STATUS_INVALID_PARAMETER and nothing is removed', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, null, { Base: 0x300000, NumberOfPages: 2, ShouldMap: false, RegionNext: null });
  const deleted = domainOf(V2, DomainTypeTranslate, null);
  t.equal(V2.DeleteDomain(deleted), STATUS_SUCCESS);
  const run = platform.memory.allocateContiguousPages(6);
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(run * PAGE, 4 * PAGE)), STATUS_SUCCESS);
  const logicalFrame = platform.memory.allocateContiguousPages(1);
  t.equal(
    V2.MapLogicalRangeEx(domain, RW, pfnArray([logicalFrame]), logicalFrame * PAGE, null, null, out()),
    STATUS_SUCCESS,
    'logical == physical, but a logical mapping',
  );
  const tokenFrame = platform.memory.allocateContiguousPages(1);
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(domain, PAGE, tokenFrame * PAGE, null, null, token), STATUS_SUCCESS, 'a token over a physical address');
  t.equal(V2.MapReservedLogicalRange(token.value!, 0, RW, pfnArray([tokenFrame]), out()), STATUS_SUCCESS, 'mapped onto itself');
  const check = watch(
    platform,
    domain,
    [run, run + 1, run + 3, run + 4, logicalFrame, 0x300, tokenFrame].map((p) => p * PAGE),
  );
  const cases: Array<[string, unknown, unknown, number]> = [
    ...(
      [
        ['an Unmanaged domain', domainOf(V2, DomainTypeUnmanaged)],
        ['a spread copy', { ...domain }],
        ['a deleted domain', deleted],
        ['undefined', undefined],
      ] as const
    ).map(([what, d]): [string, unknown, unknown, number] => [`Domain: ${what}`, d, contiguous(run * PAGE, PAGE), STATUS_INVALID_PARAMETER_1]),
    ...badDescriptions(platform, run).map(([what, d]): [string, unknown, unknown, number] => [`description: ${what}`, domain, d, STATUS_INVALID_PARAMETER_2]),
    ['a page never mapped', domain, pfnArray([run + 5]), STATUS_INVALID_PARAMETER],
    ['running one page past the range', domain, contiguous(run * PAGE, 5 * PAGE), STATUS_INVALID_PARAMETER],
    ['mapped pages and one that is not', domain, pfnArray([run, run + 1, run + 5]), STATUS_INVALID_PARAMETER],
    ['a logical mapping at its physical address', domain, pfnArray([logicalFrame]), STATUS_INVALID_PARAMETER],
    ['a reserved hole', domain, contiguous(0x300000, PAGE), STATUS_INVALID_PARAMETER],
    ['the same page twice', domain, pfnArray([run + 1, run + 1]), STATUS_INVALID_PARAMETER],
    ['a token segment mapped at its physical address', domain, pfnArray([tokenFrame]), STATUS_INVALID_PARAMETER],
  ];
  for (const [what, d, description, expected] of cases) {
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).UnmapIdentityRangeEx(d, description);
    }, `${what}: no throw`);
    t.equal(status, expected, what);
    check(t, what);
  }
  t.equal(V2.UnmapIdentityRangeEx(domain, pfnArray([run + 2, run + 1])), STATUS_SUCCESS, 'a part of the range, described differently');
  t.same(
    [0, 1, 2, 3].map((i) => translatesTo(platform, domain, (run + i) * PAGE)),
    [[run * PAGE, RW], { faultType: TranslationFault }, { faultType: TranslationFault }, [(run + 3) * PAGE, RW]],
    'split around the hole',
  );
  t.equal(V2.UnmapIdentityRangeEx(domain, contiguous(run * PAGE, 4 * PAGE)), STATUS_INVALID_PARAMETER, 'the whole original range is no longer all mapped');
  t.equal(V2.UnmapIdentityRangeEx(domain, mdlOf(platform, [run + 3, run])), STATUS_SUCCESS, 'the two remaining pages');
  t.same(
    platform.describeDomain(domain)!.ranges.filter((r) => r.kind === 'identity'),
    [],
  );
  t.equal(V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, contiguous(run * PAGE, 4 * PAGE)), STATUS_SUCCESS, 'the pages can be identity mapped again');
});

t.test('ShouldMap regions may be removed with UnmapIdentityRangeEx, buddy domains included', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  for (const allocator of [null, buddy(32)]) {
    const what = allocator === null ? 'no allocator' : 'buddy';
    const domain = domainOf(V2, DomainTypeTranslate, allocator, { Base: 0x400000, NumberOfPages: 4, ShouldMap: true, RegionNext: null });
    t.same(translatesTo(platform, domain, 0x401234), [0x401234, RW], `${what}: the region is identity mapped READ|WRITE`);
    t.equal(V2.UnmapIdentityRangeEx(domain, contiguous(0x401000, 2 * PAGE)), STATUS_SUCCESS, `${what}: two pages of it`);
    t.same(
      [0x400000, 0x401000, 0x402000, 0x403000].map((a) => translatesTo(platform, domain, a)),
      [[0x400000, RW], { faultType: TranslationFault }, { faultType: TranslationFault }, [0x403000, RW]],
      `${what}: the rest stays`,
    );
    t.equal(V2.UnmapIdentityRangeEx(domain, pfnArray([0x400, 0x403])), STATUS_SUCCESS, `${what}: the rest`);
    t.same(platform.describeDomain(domain)!.ranges, [], `${what}: nothing left`);
    t.equal(V2.UnmapIdentityRangeEx(domain, pfnArray([0x400])), STATUS_INVALID_PARAMETER, `${what}: not twice`);
  }
});

t.test('random identity maps and unmaps agree with a page-by-page model', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, null);
  const random = rng(0x1de);
  const BASE = 0x200;
  const WINDOW = 48;
  const model = new Map<number, number>();
  const outcomes = new Map<string, number>();
  let mismatches = 0;
  for (let step = 0; step < 250; step++) {
    const pages = Array.from({ length: 1 + Math.floor(random() * 6) }, () => BASE + Math.floor(random() * WINDOW));
    const distinct = new Set(pages).size === pages.length;
    const description = random() < 0.3 && distinct ? mdlOf(platform, pages) : pfnArray(pages);
    if (random() < 0.5) {
      const access = 1 + Math.floor(random() * 3);
      const expected = distinct && pages.every((p) => !model.has(p)) ? STATUS_SUCCESS : STATUS_RESOURCE_IN_USE;
      const status = V2.MapIdentityRangeEx(domain, access, description);
      if (status !== expected) mismatches++;
      outcomes.set(`map ${status}`, (outcomes.get(`map ${status}`) ?? 0) + 1);
      if (status === STATUS_SUCCESS) for (const p of pages) model.set(p, access);
    } else {
      const expected = distinct && pages.every((p) => model.has(p)) ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
      const status = V2.UnmapIdentityRangeEx(domain, description);
      if (status !== expected) mismatches++;
      outcomes.set(`unmap ${status}`, (outcomes.get(`unmap ${status}`) ?? 0) + 1);
      if (status === STATUS_SUCCESS) for (const p of pages) model.delete(p);
    }
    for (let p = BASE - 2; p < BASE + WINDOW + 2; p++) {
      const wanted = model.has(p) ? [p * PAGE + 5, model.get(p)] : { faultType: TranslationFault };
      if (JSON.stringify(translatesTo(platform, domain, p * PAGE + 5)) !== JSON.stringify(wanted)) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'every status and every translation matched the model over 250 steps');
  for (const key of [`map ${STATUS_SUCCESS}`, `map ${STATUS_RESOURCE_IN_USE}`, `unmap ${STATUS_SUCCESS}`, `unmap ${STATUS_INVALID_PARAMETER}`]) {
    t.ok((outcomes.get(key) ?? 0) >= 10, `outcome ${key} happened ${outcomes.get(key) ?? 0} times`);
  }
});

t.test('partial identity unmaps inside large aligned ranges keep every other page mapped', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const first = platform.memory.allocateContiguousPages(1024, 512);
  const mapped = domainOf(V2, DomainTypeTranslate, null);
  t.equal(V2.MapIdentityRangeEx(mapped, IOMMU_ACCESS_WRITE, contiguous(first * PAGE, 1024 * PAGE)), STATUS_SUCCESS, 'MapIdentityRangeEx of 4 MiB');
  const region = domainOf(V2, DomainTypeTranslate, buddy(40), { Base: first * PAGE, NumberOfPages: 1024, ShouldMap: true, RegionNext: null });
  const random = rng(0x2b1);
  for (const [what, domain, access] of [
    ['mapped', mapped, IOMMU_ACCESS_WRITE],
    ['ShouldMap region', region, RW],
  ] as const) {
    const holes = [0, 511, 512, 513, 900, 1023];
    t.equal(V2.UnmapIdentityRangeEx(domain, pfnArray(holes.map((h) => first + h))), STATUS_SUCCESS, `${what}: scattered pages`);
    const sample = [1, 510, 514, 899, 901, 1022, ...Array.from({ length: 30 }, () => Math.floor(random() * 1024))];
    for (const page of sample) {
      const address = (first + page) * PAGE + Math.floor(random() * PAGE);
      t.same(translatesTo(platform, domain, address), holes.includes(page) ? { faultType: TranslationFault } : [address, access], `${what}: page ${page}`);
    }
  }
});
