import { createPlatform, type DMA_IOMMU_INTERFACE_EX, type FAULT_INFORMATION, type Out, type PciFunction, type Platform } from '../../machine/index.js';
import { type FunctionModel, Model, PAGE } from './model.js';

/**
 * The real side of the fuzzer: one platform reused by every sequence (building one per
 * sequence would cost more than the sequence), torn down to a clean state after each and
 * checked for leaks, with the handles each model id stands for.
 */

/** The routines, called through an untyped view: the fuzzer passes what the types forbid. */
export type LooseTable = Record<string, (...args: unknown[]) => unknown>;

/** The platform's fixed PCI functions: three plain ones, one external-facing, one not behind the IOMMU. */
export const FUNCTIONS: readonly FunctionModel[] = [
  { behindIommu: true, externalFacing: false },
  { behindIommu: true, externalFacing: false },
  { behindIommu: true, externalFacing: false },
  { behindIommu: true, externalFacing: true },
  { behindIommu: false, externalFacing: false },
];
const MEMORY_BYTES = 8 * 1024 * 1024;
export const MEMORY_PAGES = MEMORY_BYTES / PAGE;
/** Small, so that sequences reach the domain limit. */
const MAX_DOMAINS = 6;

export interface Recorded {
  faults: Array<{ device: number; info: FAULT_INFORMATION }>;
  stateChanges: Array<[number, number]>;
}

export class World {
  readonly platform: Platform;
  readonly V2: LooseTable;
  readonly functions: PciFunction[];
  /** Page of guest RAM that unmanaged domains use as an all-invalid ARM64 table (kept zero). */
  readonly ttbrPage: number;
  readonly domains = new Map<number, object>();
  readonly devices = new Map<number, object>();
  readonly tokens = new Map<number, object>();
  /** Mapped segments by `${token}:${offsetPages}` (the MappedSegment objects the routine filled). */
  readonly segments = new Map<string, object>();
  /** Handles that were deleted or freed, by model id. */
  readonly dead = new Map<number, object>();
  readonly buffers = new Map<number, number[]>();
  readonly recorded: Recorded = { faults: [], stateChanges: [] };
  /** The two state-change callbacks a sequence may register (by index). */
  readonly callbacks: Array<(change: { AvailableDomainTypes: number }, context: unknown) => void>;
  /** Free guest pages and page tables in use with nothing created (after the first teardown). */
  baselineFreePages = 0;
  baselineTables = -1;
  /** Sequences run on this platform. */
  sequences = 0;
  /** Commands run, and the statuses each routine answered (what the fuzzer reached). */
  steps = 0;
  readonly statuses = new Map<string, Set<number>>();

  private constructor(platform: Platform) {
    this.platform = platform;
    const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
    platform.IoGetIommuInterfaceEx(2, 0, table);
    this.V2 = table.value!.V2 as unknown as LooseTable;
    this.functions = FUNCTIONS.map((f, i) =>
      platform.bus.addFunction({ bus: 0, device: 8 + i, function: 0, behindIommu: f.behindIommu, externalFacing: f.externalFacing }),
    );
    // No command's frames or DMA addresses reach the last page, so it stays zero.
    this.ttbrPage = MEMORY_PAGES - 1;
    this.callbacks = [0, 1].map(() => (change: { AvailableDomainTypes: number }, context: unknown) => {
      this.recorded.stateChanges.push([context as number, change.AvailableDomainTypes]);
    });
    this.baselineFreePages = platform.memory.freePageCount;
  }

  static async create(): Promise<World> {
    const platform = await createPlatform({ workers: 1, memoryBytes: MEMORY_BYTES, maxDomains: MAX_DOMAINS, pageTableBytes: 8 * 1024 * 1024 });
    return new World(platform);
  }

  /** A fresh model of this world as it stands (nothing created). */
  model(): Model {
    this.faultBase = this.platform.faultStats();
    return new Model(FUNCTIONS, MEMORY_PAGES, MAX_DOMAINS, this.platform.memory.freePageCount);
  }

  /** Fault counts when the current sequence started (the model counts from zero). */
  faultBase = { raised: 0, delivered: 0, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 };

  /** The FaultHandler for device `id`: records what it hears. */
  faultHandler(id: number): (context: unknown, info: FAULT_INFORMATION) => void {
    return (_context, info) => this.recorded.faults.push({ device: id, info });
  }

  /**
   * Undoes everything a sequence created, through the routines (so that the teardown is
   * itself checked), and verifies nothing leaked: every guest page back, every page table
   * back once the worker has moved on. Throws on the first problem.
   */
  async teardown(model: Model): Promise<void> {
    const V2 = this.V2;
    const expect = (status: unknown, what: string) => {
      if (status !== 0) throw new Error(`teardown: ${what} returned 0x${(status as number).toString(16)}`);
    };
    for (const [id, device] of model.devices) {
      const handle = this.devices.get(id)!;
      if (device.registered !== null) expect(V2.UnregisterInterfaceStateChangeCallback!(this.callbacks[device.registered.callback], handle), 'Unregister');
      if (device.domain !== null) expect(V2.DetachDeviceEx!(handle), 'DetachDeviceEx');
      expect(V2.DeleteDevice!(handle), 'DeleteDevice');
    }
    for (const [key, segment] of this.segments) {
      const [token] = key.split(':').map(Number);
      if (model.tokens.has(token!)) expect(V2.UnmapReservedLogicalRange!(segment), 'UnmapReservedLogicalRange');
    }
    for (const id of model.tokens.keys()) expect(V2.FreeReservedLogicalAddressRange!(this.tokens.get(id)), 'FreeReservedLogicalAddressRange');
    for (const id of model.domains.keys()) expect(V2.DeleteDomain!(this.domains.get(id)), 'DeleteDomain');
    for (const pfns of this.buffers.values()) this.platform.memory.freePages(pfns);
    this.platform.setPolicy({ kernelDmaProtection: true, dmaGuardPolicy: 1, userUnlocked: true });
    this.domains.clear();
    this.devices.clear();
    this.tokens.clear();
    this.segments.clear();
    this.dead.clear();
    this.buffers.clear();
    this.recorded.faults.length = 0;
    this.recorded.stateChanges.length = 0;
    if (this.platform.memory.freePageCount !== this.baselineFreePages)
      throw new Error(`teardown: ${this.baselineFreePages - this.platform.memory.freePageCount} guest page(s) leaked`);
    // One DMA moves the worker past every deletion, so that quarantined tables can return.
    await this.platform.dma(this.functions[0]!, { address: 0, length: 1 });
    const tables = this.platform.pageTablesInUse;
    if (this.baselineTables < 0) this.baselineTables = tables;
    else if (tables !== this.baselineTables) throw new Error(`teardown: ${tables - this.baselineTables} page table(s) leaked`);
    const stats = this.platform.faultStats();
    if (stats.raised !== stats.delivered + stats.dropped + stats.suppressed + stats.pending) throw new Error('teardown: fault counts do not add up');
    this.sequences++;
  }

  async close(): Promise<void> {
    await this.platform.close();
  }
}
