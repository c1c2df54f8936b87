import { DMA_OK, TranslationFault, type WorkerRuntime } from 'viommu';
import { DEVICE_VERSION, kLedgerSlot, kLedgerState, kLedgerUnmapSeq, kMapped, kUnmapped, LEDGER_FIELDS, patternWord, slotOfWord } from './page-ledger.js';

export interface CheckArgs {
  device: number;
  slotBase: number;
  slots: number;
  ledger: SharedArrayBuffer;
  milliseconds: number;
  seed: number;
}

export interface CheckResult {
  dmas: number;
  faults: number;
  bytesChecked: number;
  violations: number;
  firstViolation: string | null;
}

/**
 * Runs random reads and writes over the slots until the deadline and checks every byte moved
 * against the ledger: a DMA must never use a page that was unmapped before it started (its
 * invalidation sequence), never a page of another slot, and must see whole, untorn slot
 * patterns unless the page was being unmapped concurrently.
 */
export function check(runtime: WorkerRuntime, args: CheckArgs): CheckResult {
  const port = runtime.portFor(args.device);
  const engine = runtime.engine;
  const ledger = new Int32Array(args.ledger);
  const buffer = new Uint8Array(8192);
  const words = new Int32Array(buffer.buffer);
  const result: CheckResult = { dmas: 0, faults: 0, bytesChecked: 0, violations: 0, firstViolation: null };
  let x = args.seed >>> 0;
  const random = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x;
  };
  const violation = (what: string) => {
    result.violations++;
    result.firstViolation ??= what;
  };
  const deadline = performance.now() + args.milliseconds;
  while (performance.now() < deadline) {
    for (let n = 0; n < 64; n++) {
      const slot = random() % args.slots;
      const pages = slot + 1 < args.slots && random() % 4 === 0 ? 2 : 1;
      const iova = args.slotBase + slot * 4096;
      const write = random() % 8 === 0;
      if (write) for (let w = 0; w < pages * 1024; w++) words[w] = patternWord(slot + (w >> 10), DEVICE_VERSION);
      const status = write ? port.write(iova, buffer, 0, pages * 4096) : port.read(iova, pages * 4096, buffer, 0);
      result.dmas++;
      if (status !== DMA_OK) {
        if (status === TranslationFault) result.faults++;
        else violation(`slot ${slot}: unexpected fault type ${status}`);
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
            const first = offset / 4;
            const word = words[first]!;
            let uniform = slotOfWord(word) === expectedSlot;
            for (let w = first; uniform && w < first + 1024; w++) if (words[w] !== word) uniform = false;
            // A torn or foreign page is only excusable while the page is being unmapped.
            if (!uniform && state === kMapped) violation(`slot ${expectedSlot}: page 0x${page.toString(16)} read torn or foreign data`);
            result.bytesChecked += 4096;
          }
        }
      }
    }
  }
  return result;
}
