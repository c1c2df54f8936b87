import t from 'tap';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_SUCCESS,
  TranslationFault,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { buddy, out, PAGE, pfnArray, platformFor, rng, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/**
 * Buddy placement against an exact model: a request must succeed exactly when some block of
 * the right power-of-two size, aligned to its size, lies wholly inside [Min, Max] and the
 * space, and has no page in use (page 0 is always in use); a success must return such a
 * block; space must come back only when the last page of an allocation is unmapped.
 */
t.test('random bounded and unbounded buddy placement agrees with an exact model', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const WIDTH = 20;
  const SPACE = 2 ** (WIDTH - 12);
  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(WIDTH), null, domain), STATUS_SUCCESS);
  const frames = platform.memory.allocatePages(16);
  const random = rng(0xb0dd1);
  interface Allocation {
    first: number;
    block: number;
    mapped: Set<number>;
    frames: Map<number, number>;
  }
  const live: Allocation[] = [];
  const used = (page: number) => page === 0 || live.some((a) => page >= a.first && page < a.first + a.block);
  const blockFits = (size: number, lowPage: number, highPage: number) => {
    for (let start = Math.ceil(lowPage / size) * size; start + size <= highPage; start += size) {
      let free = true;
      for (let p = start; p < start + size && free; p++) free = !used(p);
      if (free) return true;
    }
    return false;
  };
  const failures: string[] = [];
  const fail = (why: string) => failures.length < 20 && failures.push(why);
  const counts = { placed: 0, mix: 0, insufficient: 0, partial: 0, freed: 0, refusedUnmap: 0 };

  for (let step = 0; step < 400; step++) {
    const roll = random();
    if (roll < 0.55 || live.length === 0) {
      const pages = 1 + Math.floor(random() * (random() < 0.2 ? 40 : 6));
      const size = 2 ** Math.ceil(Math.log2(pages));
      const bounded = random() < 0.5;
      let min: number | null = null;
      let max: number | null = null;
      if (bounded) {
        min = random() < 0.2 ? null : Math.floor(random() * (SPACE + 4) * PAGE);
        max = random() < 0.2 ? null : (min ?? 0) + Math.floor((random() * 40 - 4) * PAGE);
        if (max !== null && max < 0) max = 0;
      }
      const pfns = Array.from({ length: pages }, () => frames[Math.floor(random() * frames.length)]!);
      const logical = out<number>();
      const status = V2.MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ, pfnArray(pfns), null, min, max, logical);
      const low = min ?? 0;
      const high = max ?? SPACE * PAGE - 1;
      const lowPage = Math.ceil(low / PAGE);
      const highPage = Math.min(SPACE, Math.floor((high + 1) / PAGE));
      const possible = low <= high && blockFits(size, lowPage, highPage);
      const what = `step ${step}: ${pages} page(s) in [${min}, ${max}]`;
      if (status === STATUS_SUCCESS) {
        counts.placed++;
        const first = logical.value! / PAGE;
        if (!possible) fail(`${what}: placed although no block fits`);
        if (first % size !== 0) fail(`${what}: block at page ${first} not aligned to ${size}`);
        if (first < lowPage || first + size > highPage) fail(`${what}: block [${first}, +${size}) outside the bounds`);
        for (let p = first; p < first + size; p++) if (used(p)) fail(`${what}: page ${p} was already in use`);
        const mapped = new Set(Array.from({ length: pages }, (_, i) => first + i));
        live.push({ first, block: size, mapped, frames: new Map(pfns.map((f, i) => [first + i, f])) });
      } else {
        // Bounds count only when given: both absent is an unbounded request (INSUFFICIENT_RESOURCES).
        const hasBounds = min !== null || max !== null;
        if (hasBounds ? status === STATUS_INVALID_PARAMETER_MIX : status === STATUS_INSUFFICIENT_RESOURCES) counts[hasBounds ? 'mix' : 'insufficient']++;
        else fail(`${what}: status 0x${status.toString(16)}`);
        if (possible) fail(`${what}: refused although a free aligned block fits`);
        if ('value' in logical) fail(`${what}: LogicalAddressOut written on failure`);
      }
    } else {
      const allocation = live[Math.floor(random() * live.length)]!;
      const pages = [...allocation.mapped].sort((a, b) => a - b);
      const start = pages[Math.floor(random() * pages.length)]!;
      let count = 1;
      while (allocation.mapped.has(start + count) && random() < 0.7) count++;
      const overrun = random() < 0.15;
      const status = V2.UnmapLogicalRange(domain.value!, start * PAGE, count + (overrun ? 1 : 0));
      const allMapped = !overrun || live.some((a) => a.mapped.has(start + count));
      if (allMapped) {
        // An overrun into the next allocation's mapped page is legal too: it removes that page.
        if (status !== STATUS_SUCCESS) fail(`unmap [${start}, +${count + (overrun ? 1 : 0)}): 0x${status.toString(16)}`);
        for (let p = start; p < start + count + (overrun ? 1 : 0); p++) {
          for (const a of live) a.mapped.delete(p);
        }
        for (let i = live.length - 1; i >= 0; i--) {
          if (live[i]!.mapped.size === 0) {
            live.splice(i, 1);
            counts.freed++;
          }
        }
        counts.partial++;
      } else {
        counts.refusedUnmap++;
        if (status !== STATUS_INVALID_PARAMETER) fail(`unmap past the mapping at ${start + count}: 0x${status.toString(16)}`);
      }
    }
    const expectedFree = SPACE - 1 - live.reduce((n, a) => n + a.block, 0);
    const summary = platform.describeDomain(domain.value!)!;
    if (summary.freeLogicalPages !== expectedFree) fail(`step ${step}: freeLogicalPages ${summary.freeLogicalPages}, model ${expectedFree}`);
    const probe = Math.floor(random() * SPACE);
    const owner = live.find((a) => a.mapped.has(probe));
    const view = platform.inspectTranslation(domain.value!, probe * PAGE + 3);
    const wanted = owner
      ? { physicalAddress: owner.frames.get(probe)! * PAGE + 3, access: IOMMU_ACCESS_READ, leafBytes: PAGE }
      : { faultType: TranslationFault };
    if (JSON.stringify(view) !== JSON.stringify(wanted)) fail(`step ${step}: page ${probe} translates to ${JSON.stringify(view)}`);
  }
  t.same(failures, [], 'no disagreement with the model');
  for (const allocation of live) {
    for (const page of allocation.mapped) t.equal(V2.UnmapLogicalRange(domain.value!, page * PAGE, 1), STATUS_SUCCESS, `page ${page}, one by one`);
  }
  t.match(platform.describeDomain(domain.value!), { freeLogicalPages: SPACE - 1, ranges: [] }, 'everything came back');
  const whole = out<number>();
  t.equal(
    V2.MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ, pfnArray(Array(SPACE / 2).fill(frames[0])), null, null, null, whole),
    STATUS_SUCCESS,
    'the freed blocks coalesced: half the space is one block again',
  );
  t.equal(whole.value, (SPACE / 2) * PAGE, 'the upper half (the lower one holds page 0)');
  t.ok(
    counts.placed >= 40 && counts.mix >= 20 && counts.insufficient >= 3 && counts.freed >= 20 && counts.refusedUnmap >= 5,
    `every outcome exercised: ${JSON.stringify(counts)}`,
  );
});
