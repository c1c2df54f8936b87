import t from 'tap';
import type { Test } from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_RESERVED_REGION,
  type Platform,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_DMA_DOMAIN_TYPE,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
} from '../../machine/index.js';
import { buddy, contiguous, ok, out, PAGE, pfnArray, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/**
 * ReserveLogicalAddressRange placement and parameters, and how tokens coexist with the rest of
 * a Translate domain (DeleteDomain, UnmapLogicalRange, MapLogicalRangeEx). Mapping inside
 * tokens is in reserved-segments.test.ts, the page-table guarantee in reserved-tables.test.ts.
 */

function createDomain(
  V2: DMA_IOMMU_INTERFACE_V2,
  allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null = buddy(),
  regions: IOMMU_DMA_RESERVED_REGION | null = null,
  type: IOMMU_DMA_DOMAIN_TYPE = DomainTypeTranslate,
): IOMMU_DMA_DOMAIN {
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(type, ZERO_FLAGS, allocator, regions, domain), 'CreateDomainEx');
  return domain.value!;
}

function reserve(V2: DMA_IOMMU_INTERFACE_V2, domain: IOMMU_DMA_DOMAIN, size: number, explicit: number | null = null): IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(domain, size, explicit, null, null, token), 'ReserveLogicalAddressRange');
  return token.value!;
}

/** Everything a rejected call must leave as it was. */
function snapshot(platform: Platform, domain: IOMMU_DMA_DOMAIN, addresses: readonly number[]) {
  return {
    domain: platform.describeDomain(domain),
    tables: platform.pageTablesInUse,
    translations: addresses.map((address) => platform.inspectTranslation(domain, address)),
  };
}

/** Calls a routine that must fail with `expected`, leave its out parameter `{}` and change nothing. */
function rejected(t: Test, probe: () => unknown, call: (outParam: object) => number, expected: number, what: string): void {
  const before = probe();
  const outParam = {};
  t.equal(call(outParam), expected, what);
  t.strictSame(outParam, {}, `${what}: out parameter untouched`);
  t.strictSame(probe(), before, `${what}: nothing changed`);
}

function tokenRanges(platform: Platform, domain: IOMMU_DMA_DOMAIN) {
  return platform.describeDomain(domain)!.ranges.filter((range) => range.kind === 'token');
}

t.test('a buddy domain places a token itself: the token and the domain summary describe the reserved range', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, buddy(40));
  const freeBefore = platform.describeDomain(domain)!.freeLogicalPages!;
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(domain, 8 * PAGE, null, null, null, token), STATUS_SUCCESS);
  const { LogicalAddressBase, Size } = token.value!;
  t.equal(Size, 8 * PAGE, 'Size is the reserved byte count');
  t.equal(LogicalAddressBase % PAGE, 0, 'the base is page aligned');
  t.ok(LogicalAddressBase + Size <= 2 ** 40, 'the range lies inside the allocator width');
  t.strictSame(tokenRanges(platform, domain), [{ kind: 'token', logicalAddress: LogicalAddressBase, pages: 8 }]);
  t.equal(platform.describeDomain(domain)!.tokens, 1);
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, freeBefore - 8, 'the allocator gave the pages away');
  t.strictSame(platform.inspectTranslation(domain, LogicalAddressBase), { faultType: TranslationFault }, 'reserved is not mapped');

  const second = reserve(V2, domain, 8 * PAGE);
  const overlap = second.LogicalAddressBase < LogicalAddressBase + Size && LogicalAddressBase < second.LogicalAddressBase + second.Size;
  t.notOk(overlap, 'two tokens never share a page');
});

t.test('placement follows MapLogicalRangeEx: explicit address only without an allocator, Min/Max bounds, exhaustion', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const withBuddy = createDomain(V2, buddy(40));
  const plain = createDomain(V2, null);
  const probe = () => [snapshot(platform, withBuddy, []), snapshot(platform, plain, [])];

  rejected(
    t,
    probe,
    (o) => V2.ReserveLogicalAddressRange(withBuddy, PAGE, 0x100000, null, null, o),
    STATUS_NOT_SUPPORTED,
    'explicit address with an allocator',
  );
  rejected(t, probe, (o) => V2.ReserveLogicalAddressRange(plain, PAGE, null, null, null, o), STATUS_NOT_SUPPORTED, 'no explicit address without an allocator');
  rejected(
    t,
    probe,
    (o) => V2.ReserveLogicalAddressRange(plain, PAGE, null, 0x1000, 0x100000, o),
    STATUS_NOT_SUPPORTED,
    'Min/Max do not replace the explicit address',
  );

  const explicit = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(plain, 3 * PAGE, 0x4000_0000, null, null, explicit), STATUS_SUCCESS);
  t.strictSame({ ...explicit.value! }, { LogicalAddressBase: 0x4000_0000, Size: 3 * PAGE }, 'the token sits exactly at the explicit address');

  rejected(t, probe, (o) => V2.ReserveLogicalAddressRange(withBuddy, 4 * PAGE, null, 0x20_0000, 0x1f_ffff, o), STATUS_INVALID_PARAMETER_MIX, 'Min > Max');
  rejected(
    t,
    probe,
    (o) => V2.ReserveLogicalAddressRange(withBuddy, 4 * PAGE, null, 0x20_0000, 0x20_3ffe, o),
    STATUS_INVALID_PARAMETER_MIX,
    'no room between Min and Max',
  );
  const bounded = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(withBuddy, 4 * PAGE, null, 0x20_0000, 0x20_3fff, bounded), STATUS_SUCCESS, 'exactly enough room (inclusive bounds)');
  t.equal(bounded.value!.LogicalAddressBase, 0x20_0000);
  rejected(
    t,
    probe,
    (o) => V2.ReserveLogicalAddressRange(withBuddy, 4 * PAGE, null, 0x20_0000, 0x20_3fff, o),
    STATUS_INVALID_PARAMETER_MIX,
    'the only room inside the bounds is taken',
  );
  const minOnly = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(withBuddy, 2 * PAGE, null, 0x100_0000, null, minOnly), STATUS_SUCCESS);
  t.ok(minOnly.value!.LogicalAddressBase >= 0x100_0000, 'Min alone is honoured');
  const maxOnly = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(withBuddy, 2 * PAGE, null, null, 0x7fff, maxOnly), STATUS_SUCCESS);
  t.ok(maxOnly.value!.LogicalAddressBase + 2 * PAGE - 1 <= 0x7fff, 'Max alone is honoured');

  // A 13-bit buddy domain has two pages of logical space; page 0 is never handed out.
  const tiny = createDomain(V2, buddy(13));
  const tinyProbe = () => snapshot(platform, tiny, []);
  rejected(
    t,
    tinyProbe,
    (o) => V2.ReserveLogicalAddressRange(tiny, 4 * PAGE, null, null, null, o),
    STATUS_INSUFFICIENT_RESOURCES,
    'larger than the logical space',
  );
  reserve(V2, tiny, PAGE);
  rejected(t, tinyProbe, (o) => V2.ReserveLogicalAddressRange(tiny, PAGE, null, null, null, o), STATUS_INSUFFICIENT_RESOURCES, 'logical space exhausted');
});

t.test('bad domain, size and explicit address are rejected at their positions and change nothing', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, buddy());
  const plain = createDomain(V2, null);
  const passThrough = createDomain(V2, null, null, DomainTypePassThrough);
  const unmanaged = createDomain(V2, null, null, DomainTypeUnmanaged);
  const deleted = createDomain(V2);
  ok(V2.DeleteDomain(deleted), 'DeleteDomain');
  const probe = () => [snapshot(platform, domain, []), snapshot(platform, plain, [])];

  for (const [what, handle] of [
    ['a PassThrough domain', passThrough],
    ['an Unmanaged domain', unmanaged],
    ['a deleted domain', deleted],
    ['a copy of a real handle', { ...domain }],
    ['null', null],
  ] as const) {
    rejected(t, probe, (o) => untyped(V2).ReserveLogicalAddressRange(handle, PAGE, null, null, null, o), STATUS_INVALID_PARAMETER_1, what);
  }
  for (const size of [0, 1, PAGE - 1, PAGE + 1, 2.5 * PAGE, -PAGE, NaN, 2 ** 53, '4096', null]) {
    rejected(t, probe, (o) => untyped(V2).ReserveLogicalAddressRange(domain, size, null, null, null, o), STATUS_INVALID_PARAMETER_2, `Size ${String(size)}`);
  }
  for (const explicit of [0x1001, 0x40_0800, -PAGE, 1.5]) {
    rejected(t, probe, (o) => V2.ReserveLogicalAddressRange(plain, PAGE, explicit, null, null, o), STATUS_INVALID_PARAMETER_3, `explicit address ${explicit}`);
  }
});

t.test('an explicit reservation sharing a page with anything in the domain is STATUS_RESOURCE_IN_USE', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const hole: IOMMU_DMA_RESERVED_REGION = { Base: 0x30_0000, NumberOfPages: 2, ShouldMap: false, RegionNext: null };
  const domain = createDomain(V2, null, hole);
  const identityFrame = platform.memory.allocateContiguousPages(2);
  ok(V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, contiguous(identityFrame * PAGE, 2 * PAGE)), 'MapIdentityRangeEx');
  const logical = out<number>();
  ok(
    V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous(platform.memory.allocateContiguousPages(2) * PAGE, 2 * PAGE), 0x2000_0000, null, null, logical),
    'MapLogicalRangeEx',
  );
  reserve(V2, domain, 4 * PAGE, 0x3000_0000);
  const watched = [0x30_0000, identityFrame * PAGE, 0x2000_0000, 0x2000_1000, 0x3000_0000];
  const probe = () => snapshot(platform, domain, watched);

  const cases: Array<[string, number, number]> = [
    ['a reserved region', 0x30_0000, PAGE],
    ['the page before a reserved region and its first page', 0x2f_f000, 2 * PAGE],
    ['an identity range', identityFrame * PAGE + PAGE, PAGE],
    ['a logical mapping', 0x2000_1000, PAGE],
    ['a range around a logical mapping', 0x1fff_f000, 8 * PAGE],
    ['a token', 0x3000_0000, 4 * PAGE],
    ['the last page of a token', 0x3000_3000, 2 * PAGE],
    ['the first page of a token', 0x2fff_e000, 3 * PAGE],
  ];
  for (const [what, address, size] of cases) {
    rejected(t, probe, (o) => V2.ReserveLogicalAddressRange(domain, size, address, null, null, o), STATUS_RESOURCE_IN_USE, what);
  }
  const adjacent = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(domain, PAGE, 0x3000_4000, null, null, adjacent), STATUS_SUCCESS, 'the page right after a token is free');
  t.equal(V2.ReserveLogicalAddressRange(domain, PAGE, 0x2fff_f000, null, null, out()), STATUS_SUCCESS, 'and so is the page right before it');
});

t.test('a token frees only when nothing in it is mapped; its space can then be reserved again', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, buddy(40));
  const plain = createDomain(V2, null);
  const freeBefore = platform.describeDomain(domain)!.freeLogicalPages;
  const token = reserve(V2, domain, 4 * PAGE);
  const [pfn] = platform.memory.allocatePages(1);
  const segment = out<{ OwningToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN; Offset: number; Size: number }>();
  ok(V2.MapReservedLogicalRange(token, 3 * PAGE, IOMMU_ACCESS_READ, pfnArray([pfn!]), segment), 'MapReservedLogicalRange');
  const watched = [token.LogicalAddressBase + 3 * PAGE];
  const before = snapshot(platform, domain, watched);
  t.equal(V2.FreeReservedLogicalAddressRange(token), STATUS_RESOURCE_IN_USE, 'one mapped page keeps the token');
  t.strictSame(snapshot(platform, domain, watched), before, 'the refused free changed nothing');
  t.strictSame(platform.inspectTranslation(domain, watched[0]!), { physicalAddress: pfn! * PAGE, access: IOMMU_ACCESS_READ, leafBytes: PAGE });

  ok(V2.UnmapReservedLogicalRange(segment.value!), 'UnmapReservedLogicalRange');
  t.equal(V2.FreeReservedLogicalAddressRange(token), STATUS_SUCCESS);
  t.strictSame(tokenRanges(platform, domain), [], 'the token is gone from the domain');
  t.equal(platform.describeDomain(domain)!.tokens, 0);
  t.equal(platform.describeDomain(domain)!.freeLogicalPages, freeBefore, 'its logical space went back to the allocator');

  const probe = () => snapshot(platform, domain, watched);
  rejected(t, probe, () => V2.FreeReservedLogicalAddressRange(token), STATUS_INVALID_PARAMETER_1, 'freeing a freed token');
  rejected(t, probe, () => V2.FreeReservedLogicalAddressRange({ ...token }), STATUS_INVALID_PARAMETER_1, 'freeing a copy of a token');
  rejected(t, probe, () => untyped(V2).FreeReservedLogicalAddressRange(null), STATUS_INVALID_PARAMETER_1, 'freeing null');
  rejected(
    t,
    probe,
    (o) => V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), o),
    STATUS_INVALID_PARAMETER_1,
    'mapping into a freed token',
  );

  const first = reserve(V2, plain, 2 * PAGE, 0x1000_0000);
  ok(V2.FreeReservedLogicalAddressRange(first), 'FreeReservedLogicalAddressRange');
  const again = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  t.equal(V2.ReserveLogicalAddressRange(plain, 2 * PAGE, 0x1000_0000, null, null, again), STATUS_SUCCESS, 'the same explicit range can be reserved again');
  t.not(again.value, first, 'as a new token');
});

t.test('DeleteDomain is refused while tokens are outstanding, and works once they are freed', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, buddy());
  const tokens = [reserve(V2, domain, PAGE), reserve(V2, domain, 16 * PAGE)];
  const probe = () =>
    snapshot(
      platform,
      domain,
      tokens.map((token) => token.LogicalAddressBase),
    );
  rejected(t, probe, () => V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, 'two tokens outstanding');
  ok(V2.FreeReservedLogicalAddressRange(tokens[0]!), 'FreeReservedLogicalAddressRange');
  rejected(t, probe, () => V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, 'one token outstanding');
  const segment = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>();
  t.equal(
    V2.MapReservedLogicalRange(tokens[1]!, PAGE, IOMMU_ACCESS_READ, contiguous(platform.memory.allocateContiguousPages(1) * PAGE, PAGE), segment),
    STATUS_SUCCESS,
  );
  ok(V2.UnmapReservedLogicalRange(segment.value!), 'UnmapReservedLogicalRange');
  ok(V2.FreeReservedLogicalAddressRange(tokens[1]!), 'FreeReservedLogicalAddressRange');
  t.equal(V2.DeleteDomain(domain), STATUS_SUCCESS, 'no token left: the domain goes');
  t.equal(platform.describeDomain(domain), undefined);
  t.equal(V2.FreeReservedLogicalAddressRange(tokens[1]!), STATUS_INVALID_PARAMETER_1, 'and its tokens stay unknown');
});

t.test('UnmapLogicalRange never touches token pages; MapLogicalRangeEx never lands in a token', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = createDomain(V2, null);
  const frames = platform.memory.allocateContiguousPages(8);
  const logical = out<number>();
  ok(
    V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, contiguous(frames * PAGE, 2 * PAGE), 0x10_0000, null, null, logical),
    'MapLogicalRangeEx',
  );
  const token = reserve(V2, domain, 4 * PAGE, 0x10_2000);
  ok(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, contiguous((frames + 2) * PAGE, PAGE), out()), 'MapReservedLogicalRange');
  const watched = Array.from({ length: 8 }, (_, i) => 0x10_0000 + i * PAGE);
  const probe = () => snapshot(platform, domain, watched);

  rejected(t, probe, () => V2.UnmapLogicalRange(domain, 0x10_2000, 1), STATUS_INVALID_PARAMETER, 'a mapped token page');
  rejected(t, probe, () => V2.UnmapLogicalRange(domain, 0x10_3000, 3), STATUS_INVALID_PARAMETER, 'unmapped token pages');
  rejected(t, probe, () => V2.UnmapLogicalRange(domain, 0x10_0000, 3), STATUS_INVALID_PARAMETER, 'a logical mapping plus the first token page');

  for (const [what, address, pages] of [
    ['inside a token', 0x10_3000, 1],
    ['over the start of a token', 0x10_1000, 2],
    ['over the end of a token', 0x10_5000, 2],
    ['over a whole token', 0x10_2000, 4],
  ] as const) {
    rejected(
      t,
      probe,
      (o) => V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous((frames + 4) * PAGE, pages * PAGE), address, null, null, o),
      STATUS_RESOURCE_IN_USE,
      `MapLogicalRangeEx ${what}`,
    );
  }
  t.equal(
    V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous((frames + 4) * PAGE, PAGE), 0x10_6000, null, null, out()),
    STATUS_SUCCESS,
    'right after the token is fine',
  );
  t.equal(V2.UnmapLogicalRange(domain, 0x10_0000, 2), STATUS_SUCCESS, 'the logical mapping itself still unmaps');
  t.strictSame(
    platform.inspectTranslation(domain, 0x10_2000),
    { physicalAddress: (frames + 2) * PAGE, access: IOMMU_ACCESS_READ, leafBytes: PAGE },
    'and the token page is still mapped',
  );
});
