import { AddressSizeFault, PermissionFault, TranslationFault, UnsupportedUpstreamTransaction } from '../../base/enums.js';
import { PAGE_SIZE, TWO_32 } from '../../base/numbers.js';
import { CONTEXT_RECORD_INTS, kContextDomainField, kContextFlagsField } from '../shared-memory/device-context-table.js';
import {
  DOMAIN_RECORD_INTS,
  kArmConfigured,
  kArmTranslationEnabled,
  kDomainArmFlagsField,
  kDomainGenerationField,
  kDomainInputSizeField,
  kDomainLevelsField,
  kDomainRootField,
  kDomainTtbr0HighField,
  kDomainTtbr0LowField,
  kDomainTypeField,
  kDomainWalkCountField,
} from '../shared-memory/domain-table.js';
import { kSequenceField } from '../shared-memory/invalidation-log.js';
import type { SharedState } from '../shared-memory/shared-state.js';
import { walkArm64 } from './arm64-walker.js';
import { FaultRingWriter } from './fault-ring-writer.js';
import { lookupIdentityWindow } from './identity-window-lookup.js';
import { contextModeOf, MODE_BLOCKED, MODE_PASS_THROUGH, MODE_TRANSLATE, MODE_UNMANAGED, MODE_UNTRANSLATED, MODE_NO_DOMAIN } from './device-context-mode.js';
import { applyInvalidations } from './invalidation-reader.js';
import { Iotlb, type IotlbOptions, SPAN_RUN } from './iotlb.js';
import { Arm64Leaf, LeafReach, ManagedLeaf } from './leaf-results.js';
import { isContiguousRun, walkManaged } from './managed-walker.js';

/** 2^53: the first address that is not a safe integer. */
const TWO_53 = 2 ** 53;

/** translate() succeeded; the physical fragments are in `fragments`. */
export const DMA_OK = -1;
/** The function may not master the bus (Bus Master Enable clear): the IOMMU never saw it. */
export const DMA_BLOCKED = 16;

/** Multiplying by 2^-12 is exact, and much cheaper than dividing by PAGE_SIZE. */
const PAGE_INVERSE = 1 / PAGE_SIZE;

/**
 * The data plane of one worker thread: translates device accesses through the shared
 * device context, domain and page tables, with a private IOTLB, and reports faults to the
 * worker's fault ring. One instance per thread; not shareable; never allocates or throws on
 * the translation path (the fragment list grows only past the largest DMA seen so far).
 *
 * Invalidation protocol. Before trusting anything cached, translate() loads the invalidation
 * sequence with Atomics.load. If it moved, the engine applies the new log records (range
 * invalidations) to its IOTLB; domain-wide invalidations need no record because every entry
 * carries its domain's generation, read fresh for each DMA. So once a control-plane routine
 * has published its change, every DMA that starts afterwards uses the new state.
 *
 * translate() returns a status and leaves its fragments (or fault) in the public fields below;
 * inside, every lookup follows the side-result convention of leaf-results.ts.
 */
export class TranslationEngine {
  readonly iotlb: Iotlb;
  /** Worker slot, which is also the index of this worker's fault ring. */
  readonly slot: number;
  /** Bytes of guest RAM (DMA beyond it is an address-size fault). */
  ramBytes: number;
  /** Physical fragments of the last successful translate(): [address, length] pairs. */
  fragments = new Float64Array(64);
  fragmentCount = 0;
  /** Access bits (1 read, 2 write) of the last page translated. */
  lastAccess = 0;
  /** Fault of the last failed translate(). */
  faultType = 0;
  faultAddress = 0;
  /** The invalidation sequence this engine has applied. */
  sequence: number;

  readonly #state: SharedState;
  readonly #ctx: Int32Array;
  readonly #dom: Int32Array;
  readonly #entries: Uint32Array;
  readonly #windows: Float64Array;
  /** Guest RAM as words, for the guest's ARM64 tables (rebuilt by useGuestMemory). */
  #ram32: Uint32Array;
  readonly #logHeader: Int32Array;
  readonly #faults: FaultRingWriter;
  /** The side results of the per-page lookups (leaf-results.ts). */
  readonly #reach = new LeafReach();
  readonly #managedLeaf = new ManagedLeaf();
  readonly #arm64Leaf = new Arm64Leaf();

  /**
   * False on the main thread, which owns no worker slot: the control plane, on the same thread, cannot retire a table mid-walk.
   * True in a DMA worker, whose fault ring writer may also stall a muted device (fault-ring-writer.ts).
   */
  readonly #guardsReclamation: boolean;

  constructor(state: SharedState, slot: number, iotlb: IotlbOptions = {}, guardsReclamation = true) {
    this.#guardsReclamation = guardsReclamation;
    this.#state = state;
    this.slot = slot;
    this.iotlb = new Iotlb(iotlb);
    this.ramBytes = state.guestMemory.byteLength;
    this.#ctx = state.contexts.fields;
    this.#dom = state.domains.fields;
    this.#entries = state.pageTables.entries;
    this.#windows = state.identityWindows.values;
    this.#ram32 = wordsOf(state.guestMemory);
    this.#logHeader = state.invalidations.header;
    this.#faults = new FaultRingWriter(state.faultRings, slot, state.contexts, state.domains, guardsReclamation);
    this.sequence = state.invalidations.sequence();
  }

  /**
   * Reads the guest's page tables from `ram` from now on: the same guest RAM, seen through a
   * new view (an emulator's WebAssembly memory grew, which replaces its buffer).
   */
  useGuestMemory(ram: Uint8Array): void {
    this.ramBytes = ram.byteLength;
    this.#ram32 = wordsOf(ram);
  }

  /** Call before a task's first DMA: catches up with the log and marks the worker busy. */
  beginTask(): void {
    const sequence = Atomics.load(this.#logHeader, kSequenceField);
    if (sequence !== this.sequence) this.#synchronise(sequence);
    if (this.#guardsReclamation) this.#state.workerSlots.markBusy(this.slot, this.sequence);
  }

  /**
   * Call after a task's last DMA: page tables retired from now on need not wait for us; the
   * IOTLB's figures go to this worker's slot (once per task, never per access).
   */
  endTask(): void {
    if (this.#guardsReclamation) {
      this.#state.workerSlots.markIdle(this.slot);
      this.#state.workerSlots.publishStats(this.slot, this.iotlb.hits, this.iotlb.misses);
    }
  }

  /**
   * Translates one device access of `length` (>= 1) bytes at `iova`, page by page, before
   * any byte moves. Returns DMA_OK with `fragments` filled, DMA_BLOCKED, or the
   * FAULT_INFORMATION_ARM64_TYPE of the first faulting page (and records the fault).
   */
  translate(device: number, iova: number, length: number, write: boolean): number {
    // A plain load first: Atomics.load costs ~6 ns in Node 20 (a builtin call), a fifth of a
    // whole translation. An aligned Int32 load never tears and reads the coherent value; when
    // it shows a change, the Atomics.load in #synchronise orders the records after it.
    if (this.#logHeader[kSequenceField] !== this.sequence) this.#synchronise(Atomics.load(this.#logHeader, kSequenceField));
    if (device !== this.#contextDevice) this.#loadContext(device);
    this.fragmentCount = 0;
    // An access whose last byte lies past 2^53 - 1 would have its end rounded by floating
    // point (and reach past its last page): that part is in no address space.
    if (iova > TWO_53 - length) return this.#pastSafeIntegers(device, iova, write);
    switch (this.#contextMode) {
      case MODE_TRANSLATE:
        return this.#translateManaged(device, iova, length, write);
      case MODE_BLOCKED:
        return DMA_BLOCKED;
      case MODE_UNTRANSLATED:
        // Not behind the IOMMU: unrestricted DMA, bounded only by guest memory (a bus error, not an IOMMU fault).
        if (iova + length > this.ramBytes) return AddressSizeFault;
        this.#append(iova, length);
        this.lastAccess = 3;
        return DMA_OK;
      case MODE_NO_DOMAIN:
        return this.#fault(device, -1, iova, write, UnsupportedUpstreamTransaction);
      case MODE_PASS_THROUGH:
        return this.#passThrough(device, this.#contextDomain, iova, length, write);
      case MODE_UNMANAGED:
        return this.#translateUnmanaged(device, this.#contextDomain, iova, length, write);
      default:
        // The domain went away under a DMA that had already read the device context.
        return this.#fault(device, this.#contextDomain, iova, write, TranslationFault);
    }
  }

  /** The part below 2^53 is translated as usual; the rest faults (TranslationFault at 2^53, no space reaches it). */
  #pastSafeIntegers(device: number, iova: number, write: boolean): number {
    const status = this.translate(device, iova, TWO_53 - iova, write);
    if (status !== DMA_OK) return status;
    this.fragmentCount = 0;
    // Not behind the IOMMU: a bus error beyond memory, as for any address past it.
    if (this.#contextMode === MODE_UNTRANSLATED) return AddressSizeFault;
    return this.#fault(device, this.#contextDomain, TWO_53, write, TranslationFault);
  }

  /**
   * The device context of the last device translated for, decoded (a context cache, as on
   * VT-d). Every change to a device context, a domain's type or a domain's generation
   * publishes an invalidation, and #synchronise forgets this cache.
   */
  #contextDevice = -1;
  #contextMode = MODE_BLOCKED;
  #contextDomain = -1;
  #contextGeneration = 0;

  #loadContext(device: number): void {
    const c = device * CONTEXT_RECORD_INTS;
    const domain = this.#ctx[c + kContextDomainField]!;
    this.#contextDevice = device;
    this.#contextDomain = domain;
    if (domain >= 0) this.#contextGeneration = this.#dom[domain * DOMAIN_RECORD_INTS + kDomainGenerationField]!;
    this.#contextMode = contextModeOf(this.#ctx[c + kContextFlagsField]!, domain, domain < 0 ? -1 : this.#dom[domain * DOMAIN_RECORD_INTS + kDomainTypeField]!);
  }

  #translateManaged(device: number, iova: number, length: number, write: boolean): number {
    const domain = this.#contextDomain;
    const generation = this.#contextGeneration;
    const need = write ? 2 : 1;
    const end = iova + length;
    let address = iova;
    let page = Math.floor(iova * PAGE_INVERSE);
    while (address < end) {
      let value: number;
      let leafLeft: number;
      if (page === this.#lastPage && domain === this.#lastDomain && generation === this.#lastGeneration) {
        value = this.#lastValue;
        leafLeft = this.#lastLeafLeft;
      } else {
        value = this.#resolveManaged(domain, generation, page, this.#reach);
        if (value < 0) return this.#fault(device, domain, address, write, TranslationFault);
        leafLeft = this.#reach.pagesLeft;
        this.#lastDomain = domain;
        this.#lastGeneration = generation;
        this.#lastPage = page;
        this.#lastValue = value;
        this.#lastLeafLeft = leafLeft;
      }
      this.lastAccess = value & 3;
      if ((value & need) === 0) return this.#fault(device, domain, address, write, PermissionFault);
      const leafEnd = (page + leafLeft) * PAGE_SIZE;
      const chunkEnd = end < leafEnd ? end : leafEnd;
      this.#append((value >>> 2) * PAGE_SIZE + (address - page * PAGE_SIZE), chunkEnd - address);
      address = chunkEnd;
      page += leafLeft;
    }
    return DMA_OK;
  }

  /** The last translation (a one-entry cache in front of the IOTLB; cleared by every invalidation). */
  #lastDomain = -1;
  #lastGeneration = 0;
  #lastPage = -1;
  #lastValue = 0;
  #lastLeafLeft = 0;

  /**
   * `pfn * 4 | access` for `page` from the IOTLB, the identity windows or a walk, with the
   * pages left in its leaf written into `reach`; -1 when unmapped.
   */
  #resolveManaged(domain: number, generation: number, page: number, reach: LeafReach): number {
    let value = this.iotlb.lookup(domain, page, generation, reach);
    if (value >= 0) return value;
    // Identity fast path: no walk, and no IOTLB entry spent on it.
    if ((value = lookupIdentityWindow(this.#dom, this.#windows, domain, page, reach)) >= 0) return value;
    const d = domain * DOMAIN_RECORD_INTS;
    Atomics.add(this.#dom, d + kDomainWalkCountField, 1);
    const leaf = this.#managedLeaf;
    const entry = walkManaged(this.#entries, this.#dom[d + kDomainRootField]!, this.#dom[d + kDomainLevelsField]!, page, leaf);
    if (entry === 0) return -1;
    const span = leaf.span;
    const access = (entry >>> 1) & 3;
    if (span === 1 && isContiguousRun(this.#entries, leaf.table, page & 511, entry)) {
      // 16 aligned leaves mapping 16 consecutive frames: cache them as one run.
      const inRun = page & 15;
      this.iotlb.insert(domain, page - inRun, SPAN_RUN, generation, (entry >>> 4) - inRun, access);
      reach.pagesLeft = SPAN_RUN - inRun;
      return (entry >>> 4) * 4 + access;
    }
    const inLeaf = page % span;
    const leafPfn = entry >>> 4;
    this.iotlb.insert(domain, page - inLeaf, span, generation, leafPfn, access);
    reach.pagesLeft = span - inLeaf;
    return (leafPfn + inLeaf) * 4 + access;
  }

  /**
   * An unmanaged domain: its configuration is read under the domain generation's seqlock
   * (ConfigureDomain makes it odd while it writes), so a DMA never mixes an old Ttbr0 with
   * a new InputSize0.
   */
  #translateUnmanaged(device: number, domain: number, iova: number, length: number, write: boolean): number {
    const d = domain * DOMAIN_RECORD_INTS;
    const dom = this.#dom;
    for (;;) {
      const generation = Atomics.load(dom, d + kDomainGenerationField);
      // Odd: ConfigureDomain is half-way through a few stores on the main thread.
      if ((generation & 1) !== 0) continue;
      const arm = dom[d + kDomainArmFlagsField]!;
      const ttbr0 = (dom[d + kDomainTtbr0HighField]! >>> 0) * TWO_32 + (dom[d + kDomainTtbr0LowField]! >>> 0);
      const inputSize = dom[d + kDomainInputSizeField]!;
      if (Atomics.load(dom, d + kDomainGenerationField) !== generation) continue;
      if ((arm & kArmConfigured) === 0) return this.#fault(device, domain, iova, write, TranslationFault);
      if ((arm & kArmTranslationEnabled) === 0) return this.#passThrough(device, domain, iova, length, write);
      return this.#translateArm64(device, domain, iova, length, write, generation, ttbr0, inputSize);
    }
  }

  #translateArm64(device: number, domain: number, iova: number, length: number, write: boolean, generation: number, ttbr0: number, inputSize: number): number {
    const d = domain * DOMAIN_RECORD_INTS;
    const need = write ? 2 : 1;
    const end = iova + length;
    const reach = this.#reach;
    const leaf = this.#arm64Leaf;
    let address = iova;
    while (address < end) {
      const page = Math.floor(address / PAGE_SIZE);
      let value = this.iotlb.lookup(domain, page, generation, reach);
      let leafLeft: number;
      if (value >= 0) {
        leafLeft = reach.pagesLeft;
      } else {
        Atomics.add(this.#dom, d + kDomainWalkCountField, 1);
        const result = walkArm64(this.#ram32, this.ramBytes, ttbr0, inputSize, address, leaf);
        if (result !== DMA_OK) return this.#fault(device, domain, address, write, result);
        const span = leaf.span;
        const inLeaf = page % span;
        this.iotlb.insert(domain, page - inLeaf, span, generation, leaf.leafPfn, leaf.access);
        value = leaf.pfn * 4 + leaf.access;
        leafLeft = span - inLeaf;
      }
      this.lastAccess = value & 3;
      if ((value & need) === 0) return this.#fault(device, domain, address, write, PermissionFault);
      const chunkEnd = Math.min(end, (page + leafLeft) * PAGE_SIZE);
      this.#append((value >>> 2) * PAGE_SIZE + (address % PAGE_SIZE), chunkEnd - address);
      address = chunkEnd;
    }
    return DMA_OK;
  }

  /** Untranslated access through a domain (PassThrough, or an unmanaged domain with translation off). */
  #passThrough(device: number, domain: number, iova: number, length: number, write: boolean): number {
    if (iova + length > this.ramBytes) {
      return this.#fault(device, domain, Math.max(iova, this.ramBytes), write, AddressSizeFault);
    }
    this.#append(iova, length);
    this.lastAccess = 3;
    return DMA_OK;
  }

  #fault(device: number, domain: number, address: number, write: boolean, type: number): number {
    this.faultType = type;
    this.faultAddress = address;
    this.#faults.raiseFor(device, domain, address, write, type);
    return type;
  }

  #append(address: number, length: number): void {
    const n = this.fragmentCount;
    const fragments = this.fragments;
    if (n === 0) {
      fragments[0] = address;
      fragments[1] = length;
      this.fragmentCount = 1;
      return;
    }
    if (fragments[2 * n - 2]! + fragments[2 * n - 1]! === address) {
      fragments[2 * n - 1] = fragments[2 * n - 1]! + length;
      return;
    }
    if (2 * n + 2 > fragments.length) {
      // Grows once per new maximum DMA size; steady-state translation never gets here.
      const grown = new Float64Array(fragments.length * 2);
      grown.set(fragments);
      this.fragments = grown;
    }
    this.fragments[2 * n] = address;
    this.fragments[2 * n + 1] = length;
    this.fragmentCount = n + 1;
  }

  /** Applies the log records published since `this.sequence`, then marks the worker busy at `sequence`. */
  #synchronise(sequence: number): void {
    applyInvalidations(this.#state.invalidations, this.sequence, sequence, this.iotlb);
    this.sequence = sequence;
    this.#lastPage = -1;
    this.#contextDevice = -1;
    if (this.#guardsReclamation) this.#state.workerSlots.markBusy(this.slot, sequence);
  }
}

/** Guest RAM as little-endian words (its byte offset is a multiple of 8: SharedBuffers). */
function wordsOf(ram: Uint8Array): Uint32Array {
  return new Uint32Array(ram.buffer, ram.byteOffset, ram.byteLength >>> 2);
}
