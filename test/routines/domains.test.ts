import t from 'tap';
import {
  DomainTypeMax,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_READ,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorMax,
  IommuDmaLogicalAllocatorNone,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_5,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DOMAIN,
  type Platform,
  type IOMMU_DMA_DOMAIN_TYPE,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type IOMMU_DMA_RESERVED_REGION,
  type Opt,
  type NTSTATUS,
} from '../../machine/index.js';
import { buddy, contiguous, domainOf, out, PAGE, platformFor, RW, v2Of, watch, ZERO_FLAGS } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/** CreateDomainEx: each type and allocator, parameters refused in position order, reserved regions, ASIDs, resources (DeleteDomain: delete-domain.test.ts). */

const MiB = 1024 * 1024;

/** One buddy page at a time until the allocator refuses; returns the addresses. */
function drain(V2: DMA_IOMMU_INTERFACE_V2, domain: IOMMU_DMA_DOMAIN, pfn: number): number[] {
  const addresses: number[] = [];
  for (;;) {
    const logical = out<number>();
    const status = V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, contiguous(pfn * PAGE, PAGE), null, null, null, logical);
    if (status !== STATUS_SUCCESS) {
      if (status !== STATUS_INSUFFICIENT_RESOURCES) throw new Error(`MapLogicalRangeEx: 0x${status.toString(16)}`);
      return addresses;
    }
    addresses.push(logical.value!);
    if (addresses.length > 4096) throw new Error('the allocator never runs dry');
  }
}

t.test('CreateDomainEx creates each type a device can use, with the requested allocator', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const cases: Array<[string, IOMMU_DMA_DOMAIN_TYPE, Opt<IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG>, Partial<ReturnType<Platform['describeDomain']>>]> = [
    ['Translate, buddy(48)', DomainTypeTranslate, buddy(48), { type: 0, allocator: 'buddy', addressBits: 48, freeLogicalPages: 2 ** 36 - 1, ranges: [] }],
    ['Translate, null allocator', DomainTypeTranslate, null, { type: 0, allocator: 'none', freeLogicalPages: null, ranges: [] }],
    ['Translate, undefined allocator', DomainTypeTranslate, undefined, { type: 0, allocator: 'none', freeLogicalPages: null }],
    [
      'Translate, allocator None',
      DomainTypeTranslate,
      { LogicalAllocatorType: IommuDmaLogicalAllocatorNone },
      { type: 0, allocator: 'none', freeLogicalPages: null },
    ],
    ['PassThrough', DomainTypePassThrough, null, { type: 1, devices: 0 }],
    ['Unmanaged', DomainTypeUnmanaged, null, { type: 2, devices: 0 }],
  ];
  const handles = new Set<unknown>();
  for (const [what, type, allocator, expected] of cases) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    t.equal(V2.CreateDomainEx(type, ZERO_FLAGS, allocator, null, domain), STATUS_SUCCESS, what);
    t.type(domain.value, 'object', `${what}: DomainOut filled with a handle`);
    t.match(platform.describeDomain(domain.value!), expected, `${what}: described as created`);
    handles.add(domain.value);
  }
  t.equal(handles.size, cases.length, 'every handle is a distinct object');
  const none = domainOf(V2, DomainTypeTranslate, { LogicalAllocatorType: IommuDmaLogicalAllocatorNone });
  const [pfn] = platform.memory.allocatePages(1);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(none, RW, contiguous(pfn! * PAGE, PAGE), null, null, null, logical), STATUS_NOT_SUPPORTED, 'allocator None: no placement');
  t.equal(V2.MapLogicalRangeEx(none, RW, contiguous(pfn! * PAGE, PAGE), 0x5000, null, null, logical), STATUS_SUCCESS, 'allocator None: explicit addresses');
  t.equal(logical.value, 0x5000);
});

t.test('buddy allocations stay below 2^min(AddressWidth, 53); page 0 is never handed out', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const [pfn] = platform.memory.allocatePages(1);
  const smallest = domainOf(V2, DomainTypeTranslate, buddy(13));
  t.match(platform.describeDomain(smallest), { addressBits: 13, freeLogicalPages: 1 });
  t.same(drain(V2, smallest, pfn!), [PAGE], 'AddressWidth 13: two pages, only page 1 is usable');
  const small = domainOf(V2, DomainTypeTranslate, buddy(16));
  const addresses = drain(V2, small, pfn!);
  t.equal(addresses.length, 15, 'AddressWidth 16: 15 single pages');
  t.same(
    [...addresses].sort((a, b) => a - b),
    Array.from({ length: 15 }, (_, i) => (i + 1) * PAGE),
    'every page below 2^16 but page 0',
  );
  const width20 = domainOf(V2, DomainTypeTranslate, buddy(20));
  const logical = out<number>();
  t.equal(
    V2.MapLogicalRangeEx(width20, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), null, 2 ** 20, null, logical),
    STATUS_INVALID_PARAMETER_MIX,
    'no room at or above 2^20',
  );
  t.equal(V2.MapLogicalRangeEx(width20, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), null, 2 ** 20 - PAGE, null, logical), STATUS_SUCCESS);
  t.equal(logical.value, 2 ** 20 - PAGE, 'the last page below 2^20');
  const widest = domainOf(V2, DomainTypeTranslate, buddy(63));
  t.match(platform.describeDomain(widest), { addressBits: 53, freeLogicalPages: 2 ** 41 - 1 }, 'AddressWidth 63 is capped at 53 bits');
  const top = out<number>();
  t.equal(V2.MapLogicalRangeEx(widest, RW, contiguous(pfn! * PAGE, PAGE), null, 2 ** 52, null, top), STATUS_SUCCESS);
  t.ok(top.value! >= 2 ** 52 && top.value! + PAGE <= 2 ** 53, 'placed inside [2^52, 2^53)');
  t.same(platform.inspectTranslation(widest, top.value! + 5), { physicalAddress: pfn! * PAGE + 5, access: RW, leafBytes: PAGE });
});

t.test('CreateDomainEx rejects each bad parameter at its position and changes nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0, maxDomains: 3 });
  const V2 = v2Of(platform);
  const existing = domainOf(V2, DomainTypeTranslate, null, { Base: 0x100000, NumberOfPages: 2, ShouldMap: true });
  const check = watch(platform, existing, [0x100000, 0x101000, 0x200000, 0x10000]);
  const region = (Base: unknown, NumberOfPages: unknown, ShouldMap = false, RegionNext: unknown = null) => ({ RegionNext, Base, NumberOfPages, ShouldMap });
  const cycle = region(0x10000, 1);
  cycle.RegionNext = region(0x20000, 1, false, cycle);
  const T = DomainTypeTranslate;
  const cases: Array<[string, unknown[], number]> = [
    ...[-1, DomainTypeMax, 5, 1.5, NaN, Infinity, '0', 0n, null, undefined, true, 2 ** 53, {}].map((type): [string, unknown[], number] => [
      `DomainType ${String(type)}`,
      [type, ZERO_FLAGS, null, null],
      STATUS_INVALID_PARAMETER_1,
    ]),
    ...[
      { AsUlonglong: 1 },
      { AsUlonglong: 2 ** 40 },
      { AsUlonglong: -1 },
      { AsUlonglong: 0.5 },
      { AsUlonglong: '0' },
      { AsUlonglong: 0n },
      {},
      null,
      undefined,
      1,
      'x',
      0n,
    ].map((flags): [string, unknown[], number] => [
      `Flags ${JSON.stringify(flags, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
      [T, flags, null, null],
      STATUS_INVALID_PARAMETER_2,
    ]),
    ['buddy config on PassThrough', [DomainTypePassThrough, ZERO_FLAGS, buddy(), null], STATUS_INVALID_PARAMETER_3],
    [
      'None config on PassThrough',
      [DomainTypePassThrough, ZERO_FLAGS, { LogicalAllocatorType: IommuDmaLogicalAllocatorNone }, null],
      STATUS_INVALID_PARAMETER_3,
    ],
    ['buddy config on Unmanaged', [DomainTypeUnmanaged, ZERO_FLAGS, buddy(), null], STATUS_INVALID_PARAMETER_3],
    ...[IommuDmaLogicalAllocatorMax, 3, -1, 0.5, '1', undefined, null].map((type): [string, unknown[], number] => [
      `LogicalAllocatorType ${String(type)}`,
      [T, ZERO_FLAGS, { LogicalAllocatorType: type, BuddyAllocatorConfig: { AddressWidth: 48 } }, null],
      STATUS_INVALID_PARAMETER_3,
    ]),
    ...[12, 0, -1, 64, 65, 13.5, NaN, '48', 48n, null, undefined].map((width): [string, unknown[], number] => [
      `AddressWidth ${String(width)}`,
      [T, ZERO_FLAGS, { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: width } }, null],
      STATUS_INVALID_PARAMETER_3,
    ]),
    ['buddy without BuddyAllocatorConfig', [T, ZERO_FLAGS, { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy }, null], STATUS_INVALID_PARAMETER_3],
    ['allocator config that is a number', [T, ZERO_FLAGS, 1, null], STATUS_INVALID_PARAMETER_3],
    ...[0x10001, 0x10800, -PAGE, 1.5, NaN, '65536', 65536n, undefined, 2 ** 53].map((base): [string, unknown[], number] => [
      `region Base ${String(base)}`,
      [T, ZERO_FLAGS, null, region(base, 1)],
      STATUS_INVALID_PARAMETER_4,
    ]),
    ...[0, -1, 1.5, NaN, '1', 1n, undefined].map((pages): [string, unknown[], number] => [
      `region NumberOfPages ${String(pages)}`,
      [T, ZERO_FLAGS, null, region(0x10000, pages)],
      STATUS_INVALID_PARAMETER_4,
    ]),
    ['overlapping regions', [T, ZERO_FLAGS, null, region(0x10000, 4, true, region(0x13000, 1))], STATUS_INVALID_PARAMETER_4],
    ['overlapping regions, later first', [T, ZERO_FLAGS, null, region(0x13000, 1, false, region(0x10000, 4, true))], STATUS_INVALID_PARAMETER_4],
    ['a region inside another', [T, ZERO_FLAGS, null, region(0x10000, 8, false, region(0x12000, 2, false))], STATUS_INVALID_PARAMETER_4],
    ['the same region twice', [T, ZERO_FLAGS, null, region(0x10000, 1, true, region(0x10000, 1, true))], STATUS_INVALID_PARAMETER_4],
    ['a region starting at 2^AddressWidth', [T, ZERO_FLAGS, buddy(20), region(2 ** 20, 1)], STATUS_INVALID_PARAMETER_4],
    ['a region running past 2^AddressWidth', [T, ZERO_FLAGS, buddy(20), region(2 ** 20 - PAGE, 2)], STATUS_INVALID_PARAMETER_4],
    ['a good region followed by a bad one', [T, ZERO_FLAGS, null, region(0x10000, 1, true, region(0x20001, 1))], STATUS_INVALID_PARAMETER_4],
    ['a region list that is a number', [T, ZERO_FLAGS, null, 5], STATUS_INVALID_PARAMETER_4],
    ['a cyclic region list', [T, ZERO_FLAGS, null, cycle], STATUS_INVALID_PARAMETER_4],
    ['a region on a PassThrough domain', [DomainTypePassThrough, ZERO_FLAGS, null, region(0x10000, 1)], STATUS_INVALID_PARAMETER_4],
    ['a region on an Unmanaged domain', [DomainTypeUnmanaged, ZERO_FLAGS, null, region(0x10000, 1)], STATUS_INVALID_PARAMETER_4],
    ['a ShouldMap region beyond guest memory', [T, ZERO_FLAGS, null, region(16 * MiB - PAGE, 2, true)], STATUS_INVALID_PARAMETER_4],
    ['TranslateS1', [DomainTypeTranslateS1, ZERO_FLAGS, null, null], STATUS_NOT_SUPPORTED],
  ];
  for (const [what, args, expected] of cases) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = untyped(V2).CreateDomainEx(...args, domain);
    }, `${what}: no throw`);
    t.equal(status, expected, what);
    t.strictSame(domain, {}, `${what}: DomainOut untouched`);
    check(t, what);
  }
  for (const bad of [null, undefined, 0, 'out', true]) {
    t.equal(untyped(V2).CreateDomainEx(T, ZERO_FLAGS, buddy(), null, bad), STATUS_INVALID_PARAMETER_5, `DomainOut ${String(bad)}`);
    check(t, `DomainOut ${String(bad)}`);
  }
  // No rejected call kept a domain slot: exactly two more domains fit (maxDomains 3).
  t.ok(domainOf(V2, DomainTypeTranslate, buddy()));
  t.ok(domainOf(V2, DomainTypeUnmanaged));
  t.equal(V2.CreateDomainEx(DomainTypePassThrough, ZERO_FLAGS, null, null, out()), STATUS_INSUFFICIENT_RESOURCES, 'the domain table is full');
});

t.test('type availability: TranslateS1 never, Unmanaged only on arm64; policy never refuses creation', async (t) => {
  const x64 = await platformFor(t, { workers: 0, arch: 'x64', dmaGuardPolicy: 0, userUnlocked: false });
  const V2 = v2Of(x64);
  for (const [what, type, expected] of [
    ['x64 TranslateS1', DomainTypeTranslateS1, STATUS_NOT_SUPPORTED],
    ['x64 Unmanaged', DomainTypeUnmanaged, STATUS_NOT_SUPPORTED],
    ['x64 Translate', DomainTypeTranslate, STATUS_SUCCESS],
    ['x64 PassThrough under "block all"', DomainTypePassThrough, STATUS_SUCCESS],
  ] as const) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    const tables = x64.pageTablesInUse;
    t.equal(V2.CreateDomainEx(type, ZERO_FLAGS, null, null, domain), expected, what);
    if (expected !== STATUS_SUCCESS) {
      t.strictSame(domain, {}, `${what}: DomainOut untouched`);
      t.equal(x64.pageTablesInUse, tables, `${what}: no page table taken`);
    } else t.match(x64.describeDomain(domain.value!), { type }, `${what}: created`);
  }
  const arm = await platformFor(t, { workers: 0, dmaGuardPolicy: 1, userUnlocked: false, kernelDmaProtection: true });
  t.match(arm.describeDomain(domainOf(v2Of(arm), DomainTypePassThrough)), { type: DomainTypePassThrough }, 'arm64 PassThrough while locked');
  t.match(arm.describeDomain(domainOf(v2Of(arm), DomainTypeUnmanaged)), { type: DomainTypeUnmanaged }, 'arm64 Unmanaged');
});

t.test('reserved regions: ShouldMap ones are identity mapped READ|WRITE, the others are holes', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const regions = {
    Base: 0x100000,
    NumberOfPages: 2,
    ShouldMap: true,
    RegionNext: { Base: 0x300000, NumberOfPages: 3, ShouldMap: false, RegionNext: { Base: 0x102000, NumberOfPages: 1, ShouldMap: true, RegionNext: null } },
  };
  const domain = domainOf(V2, DomainTypeTranslate, null, regions);
  // Page by page, so that adjacent extents may be listed merged or not.
  const pagesOf = (kind: string) =>
    platform
      .describeDomain(domain)!
      .ranges.filter((r) => r.kind === kind)
      .flatMap((r) => Array.from({ length: r.pages }, (_, i) => r.logicalAddress / PAGE + i));
  t.same(pagesOf('identity'), [0x100, 0x101, 0x102], 'the ShouldMap regions are listed as identity ranges');
  t.same(pagesOf('reserved'), [0x300, 0x301, 0x302], 'the other one as a reserved range');
  for (const address of [0x100000, 0x101abc, 0x102fff]) {
    t.same(platform.inspectTranslation(domain, address), { physicalAddress: address, access: RW, leafBytes: PAGE }, `0x${address.toString(16)} maps to itself`);
  }
  for (const address of [0xff000, 0x103000, 0x300000, 0x302fff]) {
    t.same(platform.inspectTranslation(domain, address), { faultType: TranslationFault }, `0x${address.toString(16)} is not mapped`);
  }
  const width = domainOf(V2, DomainTypeTranslate, buddy(20), { Base: 2 ** 20 - PAGE, NumberOfPages: 1, ShouldMap: false });
  t.match(platform.describeDomain(width), { freeLogicalPages: 2 ** 8 - 2 }, 'the last page below 2^AddressWidth can be reserved');
});

t.test('a buddy domain never hands out reserved-region pages', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const pfn = platform.memory.allocateContiguousPages(1, 64);
  const check = (what: string, regions: IOMMU_DMA_RESERVED_REGION, free: number, inside: (address: number) => boolean, identity: number[]) => {
    const domain = domainOf(V2, DomainTypeTranslate, buddy(16), regions);
    t.match(platform.describeDomain(domain), { freeLogicalPages: free }, `${what}: free pages exclude page 0 and the regions`);
    const addresses = drain(V2, domain, pfn);
    t.equal(addresses.length, free, `${what}: exactly the free pages were handed out`);
    t.same(
      addresses.filter((a) => a === 0 || inside(a)),
      [],
      `${what}: none inside page 0 or a region`,
    );
    for (const a of identity)
      t.same(platform.inspectTranslation(domain, a), { physicalAddress: a, access: RW, leafBytes: PAGE }, `${what}: 0x${a.toString(16)} still maps to itself`);
  };
  check('region at 0x4000', { Base: 0x4000, NumberOfPages: 4, ShouldMap: true }, 11, (a) => a >= 0x4000 && a < 0x8000, [0x4000, 0x7000]);
  check('hole at 0xc000', { Base: 0xc000, NumberOfPages: 3, ShouldMap: false }, 12, (a) => a >= 0xc000 && a < 0xf000, []);
  check('region holding logical page 0', { Base: 0, NumberOfPages: 4, ShouldMap: true }, 12, (a) => a < 0x4000, [0x1000, 0x2000, 0x3000]);
  check('hole holding logical page 0', { Base: 0, NumberOfPages: 2, ShouldMap: false }, 14, (a) => a < 0x2000, []);
});

t.test('Unmanaged domains draw from a pool of 256 ASIDs', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, { AsUlonglong: 1 }, null, null, out()), STATUS_INVALID_PARAMETER_2);
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, buddy(), null, out()), STATUS_INVALID_PARAMETER_3);
  t.equal(untyped(V2).CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, null), STATUS_INVALID_PARAMETER_5);
  const domains = Array.from({ length: 256 }, () => domainOf(V2, DomainTypeUnmanaged));
  const asids = new Set(domains.map((d) => platform.describeDomain(d)!.asid));
  t.equal(asids.size, 256, '256 distinct ASIDs');
  const more = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, more), STATUS_INSUFFICIENT_RESOURCES, 'the 257th');
  t.strictSame(more, {}, 'DomainOut untouched');
  t.ok(domainOf(V2, DomainTypeTranslate, buddy()), 'a Translate domain needs no ASID');
  t.ok(domainOf(V2, DomainTypePassThrough), 'nor does a PassThrough domain');
  t.equal(V2.DeleteDomain(domains[100]!), STATUS_SUCCESS);
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, more), STATUS_SUCCESS, 'a deleted domain gives its ASID back');
  t.equal(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, out()), STATUS_INSUFFICIENT_RESOURCES, 'and only one');
});

t.test('CreateDomainEx answers STATUS_INSUFFICIENT_RESOURCES when the page-table pool is empty', async (t) => {
  const platform = await platformFor(t, { workers: 0, pageTableBytes: 16 * 2048 });
  const V2 = v2Of(platform);
  const domains: IOMMU_DMA_DOMAIN[] = [];
  for (let status: NTSTATUS = STATUS_SUCCESS; status === STATUS_SUCCESS; ) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    status = V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(), null, domain);
    if (status === STATUS_SUCCESS) domains.push(domain.value!);
    else {
      t.equal(status, STATUS_INSUFFICIENT_RESOURCES);
      t.strictSame(domain, {}, 'DomainOut untouched');
    }
    if (domains.length > 16) break;
  }
  t.ok(domains.length > 0 && domains.length < 16, `${domains.length} domains fit in 16 tables`);
  t.ok(domainOf(V2, DomainTypePassThrough), 'a PassThrough domain needs no table');
  t.equal(V2.DeleteDomain(domains[0]!), STATUS_SUCCESS);
  t.ok(domainOf(V2, DomainTypeTranslate, buddy()), 'a deleted domain gives its tables back');
});
