import {
  createPlatform,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypePfn,
  STATUS_SUCCESS,
  describeStatus,
  type DMA_IOMMU_INTERFACE_EX,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Out,
} from '../../machine/index.js';
// The stress reaches the invalidation log and worker slots through internalsOf, which must be
// the same module instance as createPlatform's: both come from the sources (bundled into the
// benchmark), never one from the package and one from the sources.
import { internalsOf } from '../../machine/platform.js';
import { CANARY_WORD, GUARD_WORD, kLedgerSlot, kLedgerState, kLedgerUnmapSeq, kMapped, kUnmapped, LEDGER_FIELDS, patternWord } from './page-ledger.js';
import { seededRandom } from '../../examples/traffic/device-stats.js';
import { type CheckResult, kControlReady, kControlStop, type SlotCoverage } from './stress-worker.js';

/** Share of slots each worker reached, per kind of access (1 = every slot). */
interface WorkerCoverage {
  reads: number;
  writes: number;
  /** Slots this worker found backed by another page than on its previous access (it went through an unmap and remap). */
  transitions: number;
}

export interface StressResult extends Omit<CheckResult, 'coverage'> {
  remaps: number;
  rangeUnmaps: number;
  guardPagesIntact: boolean;
  seconds: number;
  coverage: WorkerCoverage[];
  /** One line per (worker, kind) that did not reach every slot; empty when coverage is complete. */
  coverageProblems: string[];
}

/**
 * What the per-slot counts of each worker leave uncovered: a slot never read, never written
 * or never seen across a remap by some worker. The stress check fails unless this is empty:
 * "every byte checked" means nothing for slots the checker never reached.
 */
export function coverageProblems(coverage: readonly SlotCoverage[]): string[] {
  const problems: string[] = [];
  coverage.forEach((worker, w) => {
    for (const kind of ['reads', 'writes', 'transitions'] as const) {
      const missing = worker[kind].flatMap((count, slot) => (count > 0 ? [] : [slot]));
      if (missing.length > 0)
        problems.push(
          `worker ${w}: ${missing.length} of ${worker[kind].length} slots without ${kind} (${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', ...' : ''})`,
        );
    }
  });
  return problems;
}

function share(counts: readonly number[]): number {
  return counts.length === 0 ? 0 : counts.filter((count) => count > 0).length / counts.length;
}

const PAGE = 4096;
/** The worker side, next to this file: .ts from the sources, .js in the bench bundle. */
const fromSources = import.meta.url.endsWith('.ts');
const checker = new URL(`./stress-worker.${fromSources ? 'ts' : 'js'}`, import.meta.url);
/** In the bench bundle (.bench/), the DMA worker is the package's built one. */
const workerUrl = fromSources ? undefined : new URL('../dist/workers/dma-worker.js', import.meta.url);

function check(status: number, what: string): void {
  if (status !== STATUS_SUCCESS) throw new Error(`${what}: ${describeStatus(status)}`);
}

/**
 * Concurrency proof: `workers` workers run checked DMA (stress-worker.ts) into one Translate
 * domain while this thread unmaps, refills with canaries, remaps and unmaps ranges under
 * them. Physical pages are reused only once every worker has synchronised past their unmap
 * (the same rule page tables follow), so a violation is always a real bug.
 */
export async function stress(
  seconds: number,
  options: { workers?: number; slots?: number; seed?: number; writeShare?: number; untilCoveredSeconds?: number } = {},
): Promise<StressResult> {
  const workers = options.workers ?? 2;
  const slots = options.slots ?? 64;
  const platform = await createPlatform({ workers, memoryBytes: 32 * 1024 * 1024, ...(workerUrl === undefined ? {} : { workerUrl }) });
  try {
    const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
    check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
    const V2 = table.value!.V2;
    const domain: Out<IOMMU_DMA_DOMAIN> = {};
    check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, null, null, domain), 'CreateDomainEx');
    const fns = Array.from({ length: workers }, (_, i) => {
      const fn = platform.bus.addFunction({ bus: 0, device: 16 + i, function: 0 });
      const device: Out<IOMMU_DMA_DEVICE> = {};
      check(V2.CreateDevice(fn, null, device), 'CreateDevice');
      check(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
      return fn;
    });
    const memory = platform.memory;
    const ledger = new Int32Array(new SharedArrayBuffer(memory.pageCount * LEDGER_FIELDS * 4));
    const words = new Int32Array(memory.buffer);
    const fillPage = (page: number, word: number) => words.fill(word, page * 1024, (page + 1) * 1024);
    // Pool pages alternate with guard pages that are never mapped.
    const allocated = memory.allocatePages(slots * 8);
    const guards = allocated.filter((_, i) => i % 2 === 1);
    const free = allocated.filter((_, i) => i % 2 === 0);
    guards.forEach((page) => {
      fillPage(page, GUARD_WORD);
    });
    free.forEach((page) => {
      fillPage(page, CANARY_WORD);
    });
    const slotBase = 0x8000_0000;
    const current = new Int32Array(slots).fill(-1);
    const versions = new Int32Array(slots);
    const quarantine: Array<{ page: number; retiredAt: number }> = [];
    const log = internalsOf(platform).iommu.shared.invalidations;
    const workerSlots = internalsOf(platform).iommu.shared.workerSlots;
    const out: Out<number> = {};
    const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;

    const map = (slot: number) => {
      if (free.length === 0) {
        const sequence = log.sequence();
        for (let i = quarantine.length - 1; i >= 0; i--) {
          if (workerSlots.allCaughtUpWith(quarantine[i]!.retiredAt, sequence)) free.push(quarantine.splice(i, 1)[0]!.page);
        }
        if (free.length === 0) return false;
      }
      const page = free.pop()!;
      versions[slot] = (versions[slot]! + 1) & 0xffff;
      fillPage(page, patternWord(slot, versions[slot]!));
      const at = page * LEDGER_FIELDS;
      Atomics.store(ledger, at + kLedgerSlot, slot + 1);
      Atomics.store(ledger, at + kLedgerState, kMapped);
      const description = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [page], NumberOfPages: 1 } };
      check(V2.MapLogicalRangeEx(domain.value!, RW, description, slotBase + slot * PAGE, null, null, out), 'MapLogicalRangeEx');
      current[slot] = page;
      return true;
    };
    const unmap = (first: number, count: number) => {
      // The sequence this unmap will publish is known in advance: record it first.
      const retiredAt = (log.sequence() + 1) | 0;
      for (let s = first; s < first + count; s++) {
        const at = current[s]! * LEDGER_FIELDS;
        Atomics.store(ledger, at + kLedgerUnmapSeq, retiredAt);
        Atomics.store(ledger, at + kLedgerState, kUnmapped);
      }
      check(V2.UnmapLogicalRange(domain.value!, slotBase + first * PAGE, count), 'UnmapLogicalRange');
      if (log.sequence() !== retiredAt) throw new Error('UnmapLogicalRange published an unexpected number of invalidations');
      for (let s = first; s < first + count; s++) {
        fillPage(current[s]!, CANARY_WORD);
        quarantine.push({ page: current[s]!, retiredAt });
        current[s] = -1;
      }
    };

    for (let slot = 0; slot < slots; slot++) map(slot);
    const milliseconds = seconds * 1000;
    const control = new Int32Array(new SharedArrayBuffer(8));
    const reached = new Int32Array(new SharedArrayBuffer(workers * slots * 3 * 4));
    // Plain loads: a flag a worker set shows up here soon enough; it is only a stop condition.
    const covered = () => reached.every((flag) => flag === 1);
    const checks = fns.map((fn, i) =>
      platform.runInWorker<CheckResult>(checker, 'check', {
        device: fn.slot,
        slotBase,
        slots,
        ledger: ledger.buffer,
        control: control.buffer,
        reached: reached.buffer,
        worker: i,
        seed: (options.seed ?? 1) + i,
        writeShare: options.writeShare,
      }),
    );
    let remaps = 0;
    let rangeUnmaps = 0;
    // The main thread's own stream: a different seed from every checker's.
    const random = seededRandom(((options.seed ?? 1) ^ 0x5bd1e995) >>> 0);
    // Churn starts once every checker runs (loading a worker's module takes a while).
    let settled = false;
    const watched = Promise.all(checks).finally(() => {
      settled = true;
    });
    while (Atomics.load(control, kControlReady) < workers && !settled) await new Promise((resolve) => setTimeout(resolve, 1));
    if (settled) await watched; // a checker failed before it started: its error, not a hang
    const started = performance.now();
    // The churn runs `seconds`, then (if asked) on until every worker reached every slot every
    // way, for at most `untilCoveredSeconds` more: a loaded machine must not make the check flaky.
    const cap = milliseconds + (options.untilCoveredSeconds ?? 0) * 1000;
    while (performance.now() - started < milliseconds || (performance.now() - started < cap && !covered())) {
      for (let n = 0; n < 32; n++) {
        if (random() < 1 / 16) {
          // Unmap a run of mapped slots in one call, then remap them one by one.
          const first = Math.floor(random() * (slots - 3));
          let count = 0;
          while (count < 4 && current[first + count]! >= 0) count++;
          if (count === 0) continue;
          unmap(first, count);
          rangeUnmaps++;
          for (let s = first; s < first + count; s++) map(s);
        } else {
          const slot = Math.floor(random() * slots);
          if (current[slot]! >= 0) unmap(slot, 1);
          if (map(slot)) remaps++;
        }
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    Atomics.store(control, kControlStop, 1);
    const results = await watched;
    const guardPagesIntact = guards.every((page) => words.subarray(page * 1024, (page + 1) * 1024).every((word) => word === GUARD_WORD));
    const total = results.reduce(
      (sum, r) => ({
        dmas: sum.dmas + r.dmas,
        faults: sum.faults + r.faults,
        bytesChecked: sum.bytesChecked + r.bytesChecked,
        violations: sum.violations + r.violations,
        firstViolation: sum.firstViolation ?? r.firstViolation,
      }),
      { dmas: 0, faults: 0, bytesChecked: 0, violations: 0, firstViolation: null as string | null },
    );
    const slotCoverage = results.map((r) => r.coverage);
    return {
      ...total,
      remaps,
      rangeUnmaps,
      guardPagesIntact,
      seconds: (performance.now() - started) / 1000,
      coverage: slotCoverage.map((c) => ({ reads: share(c.reads), writes: share(c.writes), transitions: share(c.transitions) })),
      coverageProblems: coverageProblems(slotCoverage),
    };
  } finally {
    await platform.close();
  }
}
