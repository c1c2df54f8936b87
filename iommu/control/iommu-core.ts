import { DomainTypeTranslate } from '../../base/enums.js';
import type { PhysicalMemory, Requester, RequesterBus } from '../../hardware/substrate.js';
import { kNoDomain } from '../shared-memory/device-context-table.js';
import {
  kDomainFree,
  kDomainGenerationField,
  kDomainIdentityCountField,
  kDomainIdentityVersionField,
  kDomainTypeField,
} from '../shared-memory/domain-table.js';
import { IdentityWindows, WINDOW_DOUBLES, WINDOWS_PER_DOMAIN } from '../shared-memory/identity-windows.js';
import { ExtentKind } from './logical-space.js';
import { kInvalidateDomain, kInvalidateRange } from '../shared-memory/invalidation-log.js';
import type { SharedState } from '../shared-memory/shared-state.js';
import { type Architecture, availableDomainTypes, type DmaProtectionPolicy } from './dma-protection-policy.js';
import type { DmaDeviceState, DomainState, TokenState } from './handle-state.js';
import { DeviceContexts } from './device-contexts.js';
import { HandleRegistry } from './handles.js';
import { PageTableAllocator } from './page-table-allocator.js';
import { RoutineScratch } from './routine-scratch.js';

const ASID_COUNT = 256;

export interface IommuCoreOptions {
  arch: Architecture;
  policy: DmaProtectionPolicy;
  /** 'windows': SetDeviceFaultReportingEx returns STATUS_NOT_IMPLEMENTED, as Windows documents. */
  faultReportingEx: 'implemented' | 'windows';
  /** Where errors thrown by driver callbacks go. */
  onCallbackError: (error: unknown) => void;
}

/**
 * The IOMMU's control-plane state, shared by the V2 routines (main thread only): the
 * registries behind the opaque handles, domain slots, the ASID pool, the page-table
 * allocator, and the helpers that publish changes to the workers.
 */
export class IommuCore {
  readonly arch: Architecture;
  readonly memory: PhysicalMemory;
  readonly bus: RequesterBus;
  readonly shared: SharedState;
  /** The device context table's writer, and the hooks the bus calls (PciBus.setupIommu). */
  readonly contexts: DeviceContexts;
  readonly tables: PageTableAllocator;
  readonly options: IommuCoreOptions;
  policy: DmaProtectionPolicy;

  readonly domains = new HandleRegistry<DomainState>();
  readonly devices = new HandleRegistry<DmaDeviceState>();
  readonly tokens = new HandleRegistry<TokenState>();
  /** The live DMA device of each PCI function (one at most). */
  readonly deviceOfFunction = new Map<Requester, DmaDeviceState>();
  /** Live domains by slot. */
  readonly domainAt: (DomainState | undefined)[] = [];
  /** What the map routines fill within one call (one routine runs at a time). */
  readonly scratch = new RoutineScratch();

  #freeSlots: number[] = [];
  #serial = 0;
  #handleIds = 0;
  #freeAsids: number[] = [];

  constructor(memory: PhysicalMemory, bus: RequesterBus, shared: SharedState, options: IommuCoreOptions) {
    this.memory = memory;
    this.bus = bus;
    this.shared = shared;
    this.contexts = new DeviceContexts(shared.contexts, shared.invalidations);
    this.options = options;
    this.arch = options.arch;
    this.policy = { ...options.policy };
    this.tables = new PageTableAllocator(shared.pageTables, shared.workerSlots, shared.invalidations);
    for (let slot = shared.domains.capacity - 1; slot >= 0; slot--) this.#freeSlots.push(slot);
    for (let asid = ASID_COUNT - 1; asid >= 0; asid--) this.#freeAsids.push(asid);
  }

  /** A free domain slot and a fresh serial, or null when the domain table is full. */
  takeDomainSlot(): { slot: number; serial: number } | null {
    const slot = this.#freeSlots.pop();
    return slot === undefined ? null : { slot, serial: ++this.#serial };
  }

  /** A fresh id for a device handle (shown in messages; identity is the object itself). */
  nextHandleId(): number {
    return ++this.#handleIds;
  }

  /** The last domain serial and device handle id issued (snapshots save them). */
  get lastIds(): { domainSerial: number; handleId: number } {
    return { domainSerial: this.#serial, handleId: this.#handleIds };
  }

  /**
   * Makes the next domain get serial `domainSerial + 1` and the next device handle id
   * `handleId + 1`: a restored snapshot gives its handles the ids they had when saved.
   */
  resumeIdsAfter(domainSerial: number, handleId: number): void {
    this.#serial = domainSerial;
    this.#handleIds = handleId;
  }

  releaseDomainSlot(slot: number): void {
    this.#freeSlots.push(slot);
  }

  takeAsid(): number {
    return this.#freeAsids.pop() ?? -1;
  }

  releaseAsid(asid: number): void {
    if (asid >= 0) this.#freeAsids.push(asid);
  }

  get freeAsidCount(): number {
    return this.#freeAsids.length;
  }

  reportCallbackError(error: unknown): void {
    this.options.onCallbackError(error);
  }

  /** The domain-type mask the policy currently leaves `fn`. */
  availableDomainTypesOf(fn: Requester): number {
    return availableDomainTypes(this.arch, this.policy, fn.externalFacing);
  }

  /** Pages [firstPage, firstPage + count) of `domain` changed: no later DMA may use the old translations. */
  invalidateRange(domain: DomainState, firstPage: number, count: number): void {
    this.shared.invalidations.publish(kInvalidateRange, domain.slot, firstPage, count);
  }

  /**
   * Every cached translation of `domain` dies: its generation moves on by two. The
   * generation is also a seqlock over the domain's shared record (see beginDomainUpdate),
   * so it stays even outside an update.
   */
  invalidateDomain(domain: DomainState): void {
    Atomics.add(this.shared.domains.fields, this.shared.domains.indexOf(domain.slot, kDomainGenerationField), 2);
    this.shared.invalidations.publish(kInvalidateDomain, domain.slot, 0, 0);
  }

  /** Makes the domain's generation odd: walkers wait until endDomainUpdate (see translation-engine.ts). */
  beginDomainUpdate(domain: DomainState): void {
    Atomics.add(this.shared.domains.fields, this.shared.domains.indexOf(domain.slot, kDomainGenerationField), 1);
  }

  /** Makes the generation even again, which also retires every cached translation of the domain. */
  endDomainUpdate(domain: DomainState): void {
    Atomics.add(this.shared.domains.fields, this.shared.domains.indexOf(domain.slot, kDomainGenerationField), 1);
    this.shared.invalidations.publish(kInvalidateDomain, domain.slot, 0, 0);
  }

  /** Points `fn`'s device context at `domain` (or at none). */
  setDeviceDomain(fn: Requester, domain: DomainState | null): void {
    this.contexts.setDomain(fn, domain === null ? kNoDomain : domain.slot);
  }

  setFaultReporting(fn: Requester, enabled: boolean): void {
    this.contexts.setFaultReporting(fn, enabled);
  }

  /**
   * Rewrites `domain`'s identity windows from its identity extents (the largest ones that
   * fit). Call before publishing the invalidation of a removed identity range.
   */
  refreshIdentityWindows(domain: DomainState): void {
    const extents = (domain.type === DomainTypeTranslate ? domain.space.extents() : [])
      .filter((extent) => extent.kind === ExtentKind.Identity)
      .sort((a, b) => b.pages - a.pages)
      .slice(0, WINDOWS_PER_DOMAIN);
    const domains = this.shared.domains;
    const fields = domains.fields;
    const values = this.shared.identityWindows.values;
    const at = IdentityWindows.baseOf(domain.slot);
    // Seqlock: odd while the windows change; a worker that sees odd or a changed version walks instead.
    Atomics.add(fields, domains.indexOf(domain.slot, kDomainIdentityVersionField), 1);
    extents.forEach((extent, i) => {
      values[at + i * WINDOW_DOUBLES] = extent.first;
      values[at + i * WINDOW_DOUBLES + 1] = extent.first + extent.pages;
      values[at + i * WINDOW_DOUBLES + 2] = extent.owner as number;
    });
    domains.set(domain.slot, kDomainIdentityCountField, extents.length);
    Atomics.add(fields, domains.indexOf(domain.slot, kDomainIdentityVersionField), 1);
  }

  /** Marks `domain`'s slot free in the shared domain table and invalidates it. */
  retireDomainSlot(domain: DomainState): void {
    this.shared.domains.set(domain.slot, kDomainTypeField, kDomainFree);
    this.invalidateDomain(domain);
    this.domainAt[domain.slot] = undefined;
    this.releaseDomainSlot(domain.slot);
  }
}
