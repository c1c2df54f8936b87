import t from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
} from '../../machine/index.js';
import { buddy, contiguous, domainOf, mdlOf, out, PAGE, pfnArray, platformFor, rng, RW, translatesTo, v2Of, watch } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

function map(V2: DMA_IOMMU_INTERFACE_V2, domain: unknown, description: IOMMU_MAP_PHYSICAL_ADDRESS, explicit: number | null = null, access = RW): number {
  const logical = out<number>();
  const status = untyped(V2).MapLogicalRangeEx(domain, access, description, explicit, null, null, logical);
  if (status !== STATUS_SUCCESS) throw new Error(`MapLogicalRangeEx: 0x${status.toString(16)}`);
  return logical.value!;
}

t.test('UnmapLogicalRange rejects each bad parameter at its position and removes nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, buddy(32));
  const pfns = platform.memory.allocatePages(4);
  const logical = map(V2, domain, pfnArray(pfns));
  const deleted = domainOf(V2, DomainTypeTranslate, buddy());
  t.equal(V2.DeleteDomain(deleted), STATUS_SUCCESS);
  const check = watch(platform, domain, [logical, logical + 3 * PAGE, logical + 4 * PAGE]);
  const cases: Array<[string, unknown, unknown, unknown, number]> = [
    ...(
      [
        ['a PassThrough domain', domainOf(V2, DomainTypePassThrough)],
        ['an Unmanaged domain', domainOf(V2, DomainTypeUnmanaged)],
        ['a spread copy', { ...domain }],
        ['a deleted domain', deleted],
        ['null', null],
        ['undefined', undefined],
      ] as const
    ).map(([what, d]): [string, unknown, unknown, unknown, number] => [`Domain: ${what}`, d, logical, 1, STATUS_INVALID_PARAMETER_1]),
    ...[logical + 1, logical + PAGE / 2, -PAGE, 1.5, NaN, Infinity, String(logical), BigInt(logical), 2 ** 53, null, undefined].map(
      (address): [string, unknown, unknown, unknown, number] => [`LogicalAddress ${String(address)}`, domain, address, 1, STATUS_INVALID_PARAMETER_2],
    ),
    ...[0, -1, 1.5, NaN, Infinity, '1', 1n, 2 ** 53, null, undefined].map((pages): [string, unknown, unknown, unknown, number] => [
      `NumberOfPages ${String(pages)}`,
      domain,
      logical,
      pages,
      STATUS_INVALID_PARAMETER_3,
    ]),
    ['one page past the mapping', domain, logical, 5, STATUS_INVALID_PARAMETER],
    ['starting one page before it', domain, logical - PAGE, 2, STATUS_INVALID_PARAMETER],
    ['a page never mapped', domain, logical + 4 * PAGE, 1, STATUS_INVALID_PARAMETER],
    ['logical page 0', domain, 0, 1, STATUS_INVALID_PARAMETER],
    ['past the address space', domain, 2 ** 32 - PAGE, 2, STATUS_INVALID_PARAMETER],
    ['far past the address space', domain, 2 ** 40, 1, STATUS_INVALID_PARAMETER],
    ['a huge page count', domain, logical, 2 ** 53 - 1, STATUS_INVALID_PARAMETER],
  ];
  for (const [what, d, address, pages, expected] of cases) {
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).UnmapLogicalRange(d, address, pages);
    }, `${what}: no throw`);
    t.equal(status, expected, what);
    check(t, what);
  }
  t.equal(V2.UnmapLogicalRange(domain, logical, 4), STATUS_SUCCESS, 'the mapping itself can still be removed');
});

t.test('only pages mapped by MapLogicalRangeEx can be unmapped: identity ranges and reserved regions cannot', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const regions = { Base: 0x80000, NumberOfPages: 2, ShouldMap: true, RegionNext: { Base: 0x90000, NumberOfPages: 2, ShouldMap: false, RegionNext: null } };
  const domain = domainOf(V2, DomainTypeTranslate, null, regions);
  const identity = platform.memory.allocateContiguousPages(2);
  t.equal(V2.MapIdentityRangeEx(domain, RW, contiguous(identity * PAGE, 2 * PAGE)), STATUS_SUCCESS);
  map(V2, domain, pfnArray(platform.memory.allocatePages(2)), 0x7e000);
  map(V2, domain, pfnArray(platform.memory.allocatePages(2)), 0x82000);
  map(V2, domain, pfnArray(platform.memory.allocatePages(1)), 0xa0000);
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(domain, 4 * PAGE, 0xb0000, null, null, token), STATUS_SUCCESS);
  t.equal(V2.MapReservedLogicalRange(token.value!, 0, RW, pfnArray(platform.memory.allocatePages(2)), out()), STATUS_SUCCESS, 'a token segment at 0xb0000');
  map(V2, domain, pfnArray(platform.memory.allocatePages(1)), 0xaf000);
  const check = watch(platform, domain, [
    0x7e000,
    0x7f000,
    0x80000,
    0x81000,
    0x82000,
    0x83000,
    0x90000,
    0xa0000,
    identity * PAGE,
    0xaf000,
    0xb0000,
    0xb1000,
    0xb3000,
  ]);
  const cases: Array<[string, number, number]> = [
    ['a ShouldMap region', 0x80000, 1],
    ['logical pages running into a ShouldMap region', 0x7f000, 2],
    ['a ShouldMap region into logical pages', 0x81000, 2],
    ['logical, region, logical', 0x7e000, 6],
    ['a reserved hole', 0x90000, 2],
    ['an identity range', identity * PAGE, 1],
    ['two logical mappings with a gap between', 0x82000, 0x1f],
    ['a mapped token segment', 0xb0000, 2],
    ['an unmapped token page', 0xb3000, 1],
    ['a logical page running into a token', 0xaf000, 2],
  ];
  for (const [what, address, pages] of cases) {
    t.equal(V2.UnmapLogicalRange(domain, address, pages), STATUS_INVALID_PARAMETER, what);
    check(t, what);
  }
});

t.test('partial unmaps split a mapping; buddy space returns only when the whole allocation is gone', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, buddy(32));
  const initial = platform.describeDomain(domain)!.freeLogicalPages!;
  const pfns = platform.memory.allocatePages(6);
  const logical = map(V2, domain, mdlOf(platform, pfns));
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial - 8, '6 pages take an 8-page block');
  const view = (i: number) => translatesTo(platform, domain, logical + i * PAGE + 17);
  const mapped = (i: number) => [pfns[i]! * PAGE + 17, RW];
  const steps: Array<[string, number, number, boolean[]]> = [
    ['pages 2..3 (the middle)', 2, 2, [true, true, false, false, true, true]],
    ['page 5 (the end)', 5, 1, [true, true, false, false, true, false]],
    ['page 0 (the start)', 0, 1, [false, true, false, false, true, false]],
  ];
  for (const [what, first, count, live] of steps) {
    t.equal(V2.UnmapLogicalRange(domain, logical + first * PAGE, count), STATUS_SUCCESS, what);
    for (let i = 0; i < 6; i++)
      t.same(view(i), live[i] ? mapped(i) : { faultType: TranslationFault }, `after ${what}: page ${i} ${live[i] ? 'still maps' : 'is gone'}`);
    t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial - 8, `after ${what}: the block is still allocated`);
    t.same(
      platform.describeDomain(domain)!.ranges.map((r) => [(r.logicalAddress - logical) / PAGE, r.pages]),
      live.flatMap((l, i) => (l && !live[i - 1] ? [[i, live.slice(i).indexOf(false) < 0 ? 6 - i : live.slice(i).indexOf(false)]] : [])),
      `after ${what}: the ranges are split`,
    );
  }
  const check = watch(platform, domain, [logical, logical + PAGE, logical + 4 * PAGE]);
  t.equal(V2.UnmapLogicalRange(domain, logical + PAGE, 4), STATUS_INVALID_PARAMETER, 'a range with holes in it');
  t.equal(V2.UnmapLogicalRange(domain, logical + 2 * PAGE, 1), STATUS_INVALID_PARAMETER, 'a page already unmapped');
  check(t, 'unmapping holes');
  t.equal(V2.UnmapLogicalRange(domain, logical + PAGE, 1), STATUS_SUCCESS);
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial - 8, 'one page of the allocation is left');
  t.equal(V2.UnmapLogicalRange(domain, logical + 4 * PAGE, 1), STATUS_SUCCESS, 'the last page');
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial, 'the whole block came back');
  t.same(platform.describeDomain(domain)!.ranges, []);
  t.equal(V2.UnmapLogicalRange(domain, logical + 4 * PAGE, 1), STATUS_INVALID_PARAMETER, 'and it cannot be unmapped twice');
});

t.test('one unmap may span adjacent mappings; each allocation returns when its last page goes', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, buddy(32));
  const initial = platform.describeDomain(domain)!.freeLogicalPages!;
  const place = (pages: number, min: number, max: number) => {
    const logical = out<number>();
    t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray(platform.memory.allocatePages(pages)), null, min, max, logical), STATUS_SUCCESS);
    return logical.value!;
  };
  t.equal(place(1, 0x10000, 0x10fff), 0x10000);
  t.equal(place(1, 0x11000, 0x11fff), 0x11000);
  t.equal(place(2, 0x12000, 0x13fff), 0x12000);
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial - 4);
  t.equal(V2.UnmapLogicalRange(domain, 0x11000, 2), STATUS_SUCCESS, 'the second mapping and half of the third');
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial - 3, 'only the second allocation came back');
  t.equal(V2.UnmapLogicalRange(domain, 0x10000, 1), STATUS_SUCCESS);
  t.equal(V2.UnmapLogicalRange(domain, 0x13000, 1), STATUS_SUCCESS);
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, initial, 'everything came back');

  const plain = domainOf(V2, DomainTypeTranslate, null);
  const a = platform.memory.allocatePages(3);
  const b = platform.memory.allocatePages(2);
  map(V2, plain, pfnArray(a), 0x200000);
  map(V2, plain, pfnArray(b), 0x203000, IOMMU_ACCESS_WRITE);
  t.equal(V2.UnmapLogicalRange(plain, 0x202000, 2), STATUS_SUCCESS, 'across the seam of two explicit mappings');
  t.same(
    [0x200000, 0x201000, 0x202000, 0x203000, 0x204000].map((x) => translatesTo(platform, plain, x)),
    [[a[0]! * PAGE, RW], [a[1]! * PAGE, RW], { faultType: TranslationFault }, { faultType: TranslationFault }, [b[1]! * PAGE, IOMMU_ACCESS_WRITE]],
  );
});

t.test('unmapping inside a large contiguous mapping keeps every other page translating', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const first = platform.memory.allocateContiguousPages(1024, 512);
  const domains = [
    ['buddy', domainOf(V2, DomainTypeTranslate, buddy(40)), null, IOMMU_ACCESS_READ],
    ['explicit', domainOf(V2, DomainTypeTranslate, null), 0x4000_0000, IOMMU_ACCESS_WRITE],
  ] as const;
  for (const [what, domain, explicit, access] of domains) {
    const logical = map(V2, domain, contiguous(first * PAGE, 1024 * PAGE), explicit, access);
    const random = rng(0x5eed);
    const holes = new Set([0, 300, 511, 512, 513, 1023]);
    for (const hole of holes) t.equal(V2.UnmapLogicalRange(domain, logical + hole * PAGE, 1), STATUS_SUCCESS, `${what}: page ${hole}`);
    t.equal(V2.UnmapLogicalRange(domain, logical + 700 * PAGE, 100), STATUS_SUCCESS, `${what}: pages 700..799`);
    for (let i = 700; i < 800; i++) holes.add(i);
    const sample = [1, 299, 301, 510, 514, 699, 800, 1022, ...Array.from({ length: 40 }, () => Math.floor(random() * 1024))];
    for (const page of sample) {
      const offset = Math.floor(random() * PAGE);
      t.same(
        translatesTo(platform, domain, logical + page * PAGE + offset),
        holes.has(page) ? { faultType: TranslationFault } : [(first + page) * PAGE + offset, access],
        `${what}: page ${page}`,
      );
    }
  }
});

t.test('random maps and unmaps agree with a page-by-page model', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const domain = domainOf(V2, DomainTypeTranslate, null);
  const random = rng(0xa11);
  const WINDOW = 96;
  const model = new Map<number, [number, number]>();
  const frames = platform.memory.allocatePages(64);
  let mismatches = 0;
  const outcomes = new Map<string, number>();
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  for (let step = 0; step < 300; step++) {
    const first = Math.floor(random() * WINDOW);
    const pages = 1 + Math.floor(random() * 8);
    const pageRange = Array.from({ length: pages }, (_, i) => first + i);
    if (random() < 0.55) {
      const pfns = pageRange.map(() => frames[Math.floor(random() * frames.length)]!);
      const access = Math.floor(random() * 4);
      const expected = pageRange.some((p) => model.has(p)) ? STATUS_RESOURCE_IN_USE : STATUS_SUCCESS;
      const status = V2.MapLogicalRangeEx(domain, access, pfnArray(pfns), first * PAGE, null, null, out());
      if (status !== expected) mismatches++;
      count(`map ${status}`);
      if (status === STATUS_SUCCESS)
        pageRange.forEach((p, i) => {
          model.set(p, [pfns[i]! * PAGE, access]);
        });
    } else {
      const expected = pageRange.every((p) => model.has(p)) ? STATUS_SUCCESS : STATUS_INVALID_PARAMETER;
      const status = V2.UnmapLogicalRange(domain, first * PAGE, pages);
      if (status !== expected) mismatches++;
      count(`unmap ${status}`);
      if (status === STATUS_SUCCESS)
        pageRange.forEach((p) => {
          model.delete(p);
        });
    }
    for (let p = 0; p < WINDOW + 8; p++) {
      const seen = translatesTo(platform, domain, p * PAGE);
      const wanted = model.get(p) ?? { faultType: TranslationFault };
      if (JSON.stringify(seen) !== JSON.stringify(wanted)) mismatches++;
    }
  }
  t.equal(mismatches, 0, 'every status and every translation matched the model over 300 steps');
  t.ok(model.size > 0, 'the model ended with something mapped');
  for (const key of [`map ${STATUS_SUCCESS}`, `map ${STATUS_RESOURCE_IN_USE}`, `unmap ${STATUS_SUCCESS}`, `unmap ${STATUS_INVALID_PARAMETER}`]) {
    t.ok((outcomes.get(key) ?? 0) >= 10, `outcome ${key} happened ${outcomes.get(key) ?? 0} times`);
  }
});
