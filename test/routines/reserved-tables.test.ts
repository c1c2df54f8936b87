import t from 'tap';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  describeStatus,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
} from '../../machine/index.js';
import { buddy, contiguous, mdlOf, ok, out, PAGE, pfnArray, platformFor, rng, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/**
 * The guarantee: "Page tables for the whole token exist when the reservation returns,
 * so mapping and unmapping inside it allocate nothing (prove it: count table pages before and
 * after a thousand map/unmap cycles)".
 */

type Segment = IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;
const UNMAPPED = { faultType: TranslationFault };
const GIB = 2 ** 30;

t.test('reservation builds the tables: mapping and unmapping the whole token allocate none', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  // One token straddling a 1 GiB boundary (explicit placement), one placed by the buddy allocator.
  for (const [what, allocator, pages, explicit] of [
    ['an explicit token across a 1 GiB boundary', null, 700, GIB - 300 * PAGE],
    ['a buddy-placed token', buddy(), 1024, null],
  ] as const) {
    const domain = out<IOMMU_DMA_DOMAIN>();
    ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, allocator, null, domain), 'CreateDomainEx');
    const beforeReserve = platform.pageTablesInUse;
    const domainTablesBefore = platform.describeDomain(domain.value!)!.pageTables;
    const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
    t.equal(V2.ReserveLogicalAddressRange(domain.value!, pages * PAGE, explicit, null, null, token), STATUS_SUCCESS, what);
    const afterReserve = platform.pageTablesInUse;
    t.ok(afterReserve > beforeReserve, `${what}: the reservation itself took page tables`);
    t.equal(platform.describeDomain(domain.value!)!.pageTables - domainTablesBefore, afterReserve - beforeReserve, `${what}: and the domain holds them`);

    const frames = platform.memory.allocatePages(pages);
    const segment = out<Segment>();
    t.equal(V2.MapReservedLogicalRange(token.value!, 0, IOMMU_ACCESS_READ, pfnArray(frames), segment), STATUS_SUCCESS, `${what}: map every page`);
    t.equal(platform.pageTablesInUse, afterReserve, `${what}: mapping the whole token allocated no table`);
    const base = token.value!.LogicalAddressBase;
    const translations = frames.map((_, i) => platform.inspectTranslation(domain.value!, base + i * PAGE));
    t.strictSame(
      translations,
      frames.map((pfn) => ({ physicalAddress: pfn * PAGE, access: IOMMU_ACCESS_READ, leafBytes: PAGE })),
      `${what}: every page translates`,
    );
    t.equal(V2.UnmapReservedLogicalRange(segment.value!), STATUS_SUCCESS);
    t.equal(platform.pageTablesInUse, afterReserve, `${what}: unmapping freed no table either`);
    t.strictSame(
      frames.map((_, i) => platform.inspectTranslation(domain.value!, base + i * PAGE)),
      frames.map(() => UNMAPPED),
      `${what}: every page is unmapped`,
    );
    platform.memory.freePages(frames);
  }
});

t.test('a thousand random map/unmap cycles inside a token leave the page-table count unchanged', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  const pages = 1200;
  const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
  ok(V2.ReserveLogicalAddressRange(domain.value!, pages * PAGE, GIB - 600 * PAGE, null, null, token), 'ReserveLogicalAddressRange');
  const base = token.value!.LogicalAddressBase;
  const tablesAfterReserve = platform.pageTablesInUse;
  const domainTables = platform.describeDomain(domain.value!)!.pageTables;

  const random = rng(0x7ab1e5);
  const pool = platform.memory.allocatePages(256);
  const run = platform.memory.allocateContiguousPages(128);
  const occupied = new Uint8Array(pages);
  const live: Array<{ segment: Segment; first: number; count: number }> = [];
  const problems: string[] = [];
  let maps = 0;
  let unmaps = 0;
  let overlaps = 0;
  const check = (condition: boolean, message: () => string) => {
    if (!condition && problems.length < 20) problems.push(message());
  };

  while (maps < 1000 || live.length > 0) {
    if (live.length > 0 && (maps >= 1000 || live.length >= 12 || random() < 0.45)) {
      const { segment, first, count } = live.splice(Math.floor(random() * live.length), 1)[0]!;
      const status = V2.UnmapReservedLogicalRange(segment);
      check(status === STATUS_SUCCESS, () => `unmap [${first}, +${count}): ${describeStatus(status)}`);
      occupied.fill(0, first, first + count);
      for (let i = 0; i < count; i++) {
        const view = platform.inspectTranslation(domain.value!, base + (first + i) * PAGE);
        check(JSON.stringify(view) === JSON.stringify(UNMAPPED), () => `page ${first + i} still translates after unmap: ${JSON.stringify(view)}`);
      }
      unmaps++;
    } else {
      const count = 1 + Math.floor(random() * 48);
      const first = Math.floor(random() * (pages - count + 1));
      const access = Math.floor(random() * 4);
      const kind = Math.floor(random() * 3);
      let frames: number[];
      let description: IOMMU_MAP_PHYSICAL_ADDRESS;
      if (kind === 0) {
        const start = Math.floor(random() * (128 - count + 1));
        frames = Array.from({ length: count }, (_, i) => run + start + i);
        description = contiguous(frames[0]! * PAGE, count * PAGE);
      } else {
        frames = Array.from({ length: count }, () => pool[Math.floor(random() * pool.length)]!);
        description = kind === 1 ? pfnArray(frames) : mdlOf(platform, frames);
      }
      const clash = occupied.subarray(first, first + count).some((page) => page !== 0);
      const segment = out<Segment>();
      const status = V2.MapReservedLogicalRange(token.value!, first * PAGE, access, description, segment);
      if (clash) {
        overlaps++;
        check(status === STATUS_RESOURCE_IN_USE, () => `overlapping map [${first}, +${count}): ${describeStatus(status)}`);
        check(segment.value === undefined, () => 'a refused map filled MappedSegment');
      } else {
        check(status === STATUS_SUCCESS, () => `map [${first}, +${count}): ${describeStatus(status)}`);
        const value = segment.value;
        check(
          value !== undefined && value.OwningToken === token.value && value.Offset === first * PAGE && value.Size === count * PAGE,
          () => `segment ${JSON.stringify(value)}`,
        );
        for (let i = 0; i < count; i++) {
          const offset = (i * 97) % PAGE;
          const view = platform.inspectTranslation(domain.value!, base + (first + i) * PAGE + offset);
          const expected = { physicalAddress: frames[i]! * PAGE + offset, access, leafBytes: PAGE };
          check(JSON.stringify(view) === JSON.stringify(expected), () => `page ${first + i}: ${JSON.stringify(view)}, expected ${JSON.stringify(expected)}`);
        }
        occupied.fill(1, first, first + count);
        live.push({ segment: value!, first, count });
        maps++;
      }
    }
    check(
      platform.pageTablesInUse === tablesAfterReserve,
      () => `after map ${maps} / unmap ${unmaps}: ${platform.pageTablesInUse} tables, expected ${tablesAfterReserve}`,
    );
  }

  t.strictSame(problems, [], 'every map translated, every unmap removed, every overlap was refused, no table was allocated or freed');
  t.equal(maps, 1000, 'a thousand maps');
  t.equal(unmaps, 1000, 'a thousand unmaps');
  t.ok(overlaps > 50, `the overlap rule was exercised (${overlaps} refusals)`);
  t.equal(platform.pageTablesInUse, tablesAfterReserve, 'table pages after the cycles = table pages right after the reservation');
  t.equal(platform.describeDomain(domain.value!)!.pageTables, domainTables, 'the domain holds the same tables');
  const stale = Array.from({ length: pages }, (_, i) => i).filter((i) => 'physicalAddress' in platform.inspectTranslation(domain.value!, base + i * PAGE)!);
  t.strictSame(stale, [], 'nothing of the token is left mapped');
  t.equal(V2.FreeReservedLogicalAddressRange(token.value!), STATUS_SUCCESS);
});

t.test('with the table pool exhausted, tokens still map and unmap; a reservation that cannot get its tables is refused whole', async (t) => {
  // 16 tables of 2 KiB: table 0 is never used, each domain root takes one.
  const platform = await platformFor(t, { pageTableBytes: 16 * 2048 });
  const V2 = v2Of(platform);
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  const withBuddy = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(40), null, withBuddy), 'CreateDomainEx');

  const state = () => ({ a: platform.describeDomain(domain.value!), b: platform.describeDomain(withBuddy.value!), tables: platform.pageTablesInUse });
  const before = state();
  for (const [what, call] of [
    ['a buddy token needing 20 leaf tables', (o: object) => V2.ReserveLogicalAddressRange(withBuddy.value!, 20 * 512 * PAGE, null, null, null, o)],
    ['an explicit token needing 20 leaf tables', (o: object) => V2.ReserveLogicalAddressRange(domain.value!, 20 * 512 * PAGE, 0x4000_0000, null, null, o)],
  ] as const) {
    const outParam = {};
    t.equal(call(outParam), STATUS_INSUFFICIENT_RESOURCES, what);
    t.strictSame(outParam, {}, `${what}: no token`);
    t.strictSame(state(), before, `${what}: nothing changed (logical space and tables)`);
  }

  // One-page tokens in distinct 2 MiB regions until the pool runs dry.
  const tokens: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN[] = [];
  for (let region = 0; ; region++) {
    const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
    const status = V2.ReserveLogicalAddressRange(domain.value!, PAGE, region * 512 * PAGE, null, null, token);
    if (status !== STATUS_SUCCESS) {
      t.equal(status, STATUS_INSUFFICIENT_RESOURCES, `the reservation that finds no table (region ${region})`);
      t.strictSame(token, {}, 'gets no token');
      break;
    }
    tokens.push(token.value!);
  }
  t.ok(tokens.length >= 2, `${tokens.length} tokens fit`);
  const frames = platform.memory.allocatePages(1);
  const elsewhere = out<number>();
  t.equal(
    V2.MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ, pfnArray(frames), 0x7000_0000, null, null, elsewhere),
    STATUS_INSUFFICIENT_RESOURCES,
    'a plain mapping in a new region finds no table',
  );
  const tables = platform.pageTablesInUse;
  for (const token of tokens) {
    const segment = out<Segment>();
    t.equal(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, pfnArray(frames), segment), STATUS_SUCCESS, 'yet every token maps');
    t.strictSame(platform.inspectTranslation(domain.value!, token.LogicalAddressBase), {
      physicalAddress: frames[0]! * PAGE,
      access: IOMMU_ACCESS_READ,
      leafBytes: PAGE,
    });
    t.equal(V2.UnmapReservedLogicalRange(segment.value!), STATUS_SUCCESS, 'and unmaps');
  }
  t.equal(platform.pageTablesInUse, tables, 'with the pool empty throughout');
});
