import { DMA_OK, TranslationFault, type WorkerRuntime } from 'viommu';
import { seededRandom } from '../../examples/traffic/device-stats.js';
import { DEVICE_VERSION, kLedgerSlot, kLedgerState, kLedgerUnmapSeq, kMapped, kUnmapped, LEDGER_FIELDS, patternWord, slotOfWord } from './page-ledger.js';

export interface CheckArgs {
  device: number;
  slotBase: number;
  slots: number;
  ledger: SharedArrayBuffer;
  /**
   * [kControlReady, kControlStop] (Int32): each worker adds 1 to ready when it starts; it
   * checks until the main thread stores 1 in stop. The main thread churns only while every
   * worker is checking, so that churn and checks overlap for the whole run.
   */
  control: SharedArrayBuffer;
  /** Int32 [worker][slot][read, write, transition]: set to 1 once reached, so the main thread can see coverage grow. */
  reached: SharedArrayBuffer;
  /** This worker's index in `reached`. */
  worker: number;
  seed: number;
  /** Share of DMAs that are writes (default 1/8); 0 makes write coverage fail on purpose. */
  writeShare?: number;
}

/**
 * What one worker reached, per slot: DMAs that read it and wrote it successfully, and how
 * often it found the slot backed by a different guest page than on its previous access
 * (a map/unmap transition it went through). The checker promises nothing about a slot it
 * never reached, so these counts are part of the result, not a footnote.
 */
export const kControlReady = 0;
export const kControlStop = 1;

export interface SlotCoverage {
  reads: number[];
  writes: number[];
  transitions: number[];
  /** Accesses that faulted because the slot was unmapped at that moment. */
  faults: number[];
}

export interface CheckResult {
  dmas: number;
  faults: number;
  bytesChecked: number;
  violations: number;
  firstViolation: string | null;
  coverage: SlotCoverage;
}

/**
 * Runs random reads and writes over the slots until the deadline and checks every byte moved
 * against the ledger: a DMA must never use a page that was unmapped before it started (its
 * invalidation sequence), never a page of another slot, and must see whole, untorn slot
 * patterns unless the page was being unmapped concurrently. Decisions come from the
 * project's seeded PRNG (mulberry32): every decision draws a fresh, full-width output, so
 * slot, length and direction are independent of each other.
 */
export function check(runtime: WorkerRuntime, args: CheckArgs): CheckResult {
  const port = runtime.portFor(args.device);
  const engine = runtime.engine;
  const ledger = new Int32Array(args.ledger);
  const buffer = new Uint8Array(8192);
  const words = new Int32Array(buffer.buffer);
  const slots = args.slots;
  const reads = new Float64Array(slots);
  const writes = new Float64Array(slots);
  const transitions = new Float64Array(slots);
  const faultsOf = new Float64Array(slots);
  /** The guest page each slot was last found on by this worker (-1: never). */
  const lastPage = new Float64Array(slots).fill(-1);
  const result = { dmas: 0, faults: 0, bytesChecked: 0, violations: 0, firstViolation: null as string | null };
  const random = seededRandom(args.seed);
  const writeShare = args.writeShare ?? 1 / 8;
  const violation = (what: string) => {
    result.violations++;
    result.firstViolation ??= what;
  };
  const control = new Int32Array(args.control);
  const reached = new Int32Array(args.reached, args.worker * slots * 3 * 4, slots * 3);
  Atomics.add(control, kControlReady, 1);
  while (Atomics.load(control, kControlStop) === 0) {
    for (let n = 0; n < 64; n++) {
      const slot = Math.floor(random() * slots);
      const pages = slot + 1 < slots && random() < 0.25 ? 2 : 1;
      const iova = args.slotBase + slot * 4096;
      const write = random() < writeShare;
      if (write) for (let w = 0; w < pages * 1024; w++) words[w] = patternWord(slot + (w >> 10), DEVICE_VERSION);
      const status = write ? port.write(iova, buffer, 0, pages * 4096) : port.read(iova, pages * 4096, buffer, 0);
      result.dmas++;
      if (status !== DMA_OK) {
        if (status === TranslationFault) {
          result.faults++;
          faultsOf[slot]!++;
        } else violation(`slot ${slot}: unexpected fault type ${status}`);
        continue;
      }
      const sequence = engine.sequence;
      // One fragment per physical page run; walk them page by page.
      let offset = 0;
      for (let f = 0; f < engine.fragmentCount; f++) {
        const physical = engine.fragments[2 * f]!;
        const length = engine.fragments[2 * f + 1]!;
        for (let p = 0; p < length; p += 4096, offset += 4096) {
          const page = (physical + p) / 4096;
          const expectedSlot = slot + offset / 4096;
          if (write) writes[expectedSlot]!++;
          else reads[expectedSlot]!++;
          reached[expectedSlot * 3 + (write ? 1 : 0)] = 1;
          if (lastPage[expectedSlot] !== page) {
            if (lastPage[expectedSlot]! >= 0) {
              transitions[expectedSlot]!++;
              reached[expectedSlot * 3 + 2] = 1;
            }
            lastPage[expectedSlot] = page;
          }
          const at = page * LEDGER_FIELDS;
          const owner = Atomics.load(ledger, at + kLedgerSlot) - 1;
          const state = Atomics.load(ledger, at + kLedgerState);
          const unmappedAt = Atomics.load(ledger, at + kLedgerUnmapSeq);
          if (owner !== expectedSlot) {
            violation(`slot ${expectedSlot}: DMA reached page 0x${page.toString(16)} of slot ${owner}`);
            continue;
          }
          if (state === kUnmapped && ((sequence - unmappedAt) | 0) >= 0) {
            violation(`slot ${expectedSlot}: page 0x${page.toString(16)} unmapped at sequence ${unmappedAt} used by a DMA synchronised at ${sequence}`);
            continue;
          }
          if (!write) {
            // A torn or foreign page is only excusable while the page is being unmapped.
            const odd = state === kMapped ? unexpectedWord(words, offset / 4, expectedSlot) : -1;
            if (odd >= 0) {
              const seen = `0x${(words[offset / 4]! >>> 0).toString(16)} and 0x${(words[odd]! >>> 0).toString(16)}`;
              violation(`slot ${expectedSlot}: page 0x${page.toString(16)} read torn or foreign data (${seen})`);
            }
            result.bytesChecked += 4096;
          }
        }
      }
    }
  }
  return {
    ...result,
    coverage: { reads: Array.from(reads), writes: Array.from(writes), transitions: Array.from(transitions), faults: Array.from(faultsOf) },
  };
}

/**
 * The first word of the page read at `words[first..first + 1024)` that a mapped page of
 * `slot` cannot hold, or -1. Every word must carry the slot (a canary or another slot's word
 * means the DMA used a page it should not have). Within the slot, the page holds one version
 * written by the CPU when it was mapped, unless another device's write to the same slot ran
 * at the same time: a DMA is not atomic, so words of the CPU's version and the devices'
 * (DEVICE_VERSION) may mix. Two CPU versions in one page would mean a stale page.
 */
export function unexpectedWord(words: Int32Array, first: number, slot: number): number {
  let cpuWord = -1;
  for (let w = first; w < first + 1024; w++) {
    const word = words[w]!;
    if (slotOfWord(word) !== slot) return w;
    if ((word & 0xfffff) === DEVICE_VERSION) continue;
    if (cpuWord === -1) cpuWord = word;
    else if (word !== cpuWord) return w;
  }
  return -1;
}
