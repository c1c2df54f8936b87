import { Errors } from '../base/errors.js';
import type { NTSTATUS } from '../base/ntstatus.js';
import { deviceModelOf } from '../devices/custom-models.js';
import type { DeviceModel } from '../devices/device-model.js';
import { MODEL_LIST } from '../devices/models/registry.js';
import { attachDeviceState, createDeviceBuffers, type DeviceBuffers } from '../hardware/device-shared-state.js';
import { GuestMemory } from '../hardware/guest-memory.js';
import { PciBus } from '../hardware/pci-bus.js';
import type { PciFunction } from '../hardware/pci-function.js';
import { type DmaProtectionPolicy, policyFieldProblem } from '../iommu/control/dma-protection-policy.js';
import { FaultDispatcher, type FaultStats } from '../iommu/control/fault-dispatcher.js';
import { deliverFault } from '../iommu/control/fault-delivery.js';
import { type DomainSummary, describeDomain, inspectTranslation, type TranslationView } from '../iommu/control/inspection.js';
import { IommuCore } from '../iommu/control/iommu-core.js';
import { DmaPort } from '../iommu/data-plane/dma-port.js';
import { TranslationEngine } from '../iommu/data-plane/translation-engine.js';
import { buildInterfaceV2, type DMA_IOMMU_INTERFACE_EX, type DMA_IOMMU_INTERFACE_V2, getIommuInterfaceEx } from '../iommu/interface-table.js';
import { reportStateChanges } from '../iommu/routines/state-change.js';
import { createSharedState, type SharedState } from '../iommu/shared-memory/shared-state.js';
import type { WorkerStats } from '../iommu/shared-memory/worker-slots.js';
import type { IOMMU_DMA_DOMAIN, Out } from '../iommu/types.js';
import type { DeviceWorkResult } from '../workers/device-runner.js';
import { DeviceScheduler } from '../workers/device-scheduler.js';
import { loadModule } from '../workers/environment.js';
import type { InlinePool } from '../workers/inline-pool.js';
import type { DmaWorkerPool } from '../workers/pool.js';
import type { DmaResult, WorkerTask } from '../workers/tasks.js';
import { bufferAllocatorOf, createDataPlane } from './data-plane.js';
import { checkDmaRequest, type DmaRequest } from './dma-request.js';
import { type ModuleUrl, type PlatformOptions, type ResolvedPlatformOptions, resolvePlatformOptions } from './platform-options.js';
import { capturePlatform } from './snapshot/capture.js';
import { encodeSnapshot } from './snapshot/snapshot-format.js';

export type { DmaResult } from '../workers/tasks.js';
export type { WorkerStats } from '../iommu/shared-memory/worker-slots.js';
export type { DmaRequest } from './dma-request.js';

/** A device model's batch failed (it threw, or its worker died): options.onDeviceError hears of it. */
export type DeviceErrorHandler = (fn: PciFunction, error: unknown) => void;

/** What the rest of the machine layer (snapshots) and the tests reach behind the public surface. */
export interface PlatformInternals {
  /** The IOMMU's control-plane state. */
  readonly iommu: IommuCore;
  /** Runs `fn`'s device model as if its doorbell rang (a restored snapshot's unserved doorbells). */
  runDevice(fn: PciFunction): void;
  /**
   * dataPlane 'main-thread': asks `source` where guest RAM is before every device batch and
   * DMA task, and follows it everywhere (the CPU's view, the engine, every port) when it
   * moved: the same memory in a new buffer, after an emulator's WebAssembly memory grew
   * (machine/v86 uses it). `source` returns the same view object until the RAM moves.
   */
  followGuestMemory(source: () => Uint8Array): void;
}

const internals = new WeakMap<Platform, PlatformInternals>();
/** Only createPlatform may construct a Platform (JavaScript callers too: the constructor checks it). */
const kCreate = Symbol('createPlatform');
/** The private constructor, as the class hands it to createPlatform. */
let construct: (options: ResolvedPlatformOptions, customModels: readonly DeviceModel[]) => Platform;

/**
 * @internal The control plane and other internals of `platform`: for the snapshot code and
 * for tests, not part of the package's API.
 */
export function internalsOf(platform: Platform): PlatformInternals {
  const found = internals.get(platform);
  if (found === undefined) throw Errors.InvalidArgument('platform', 'a Platform', platform);
  return found;
}

/**
 * A whole emulated machine around the IOMMU: guest memory, the PCI bus, the IOMMU's control
 * plane (the V2 routines, on this thread) and its data plane (the worker pool, or this
 * thread with options.dataPlane 'main-thread').
 */
export class Platform {
  readonly arch: 'arm64' | 'x64';
  readonly memory: GuestMemory;
  readonly bus: PciBus;
  readonly options: Readonly<ResolvedPlatformOptions>;
  readonly #iommu: IommuCore;
  readonly #v2: DMA_IOMMU_INTERFACE_V2;
  readonly #shared: SharedState;
  readonly #pool: DmaWorkerPool | null;
  /** The data plane on this thread (dataPlane 'main-thread'), else null. */
  readonly #inline: InlinePool | null;
  readonly #faults: FaultDispatcher;
  readonly #deviceBuffers: DeviceBuffers;
  readonly #scheduler: DeviceScheduler;
  #mainEngine: TranslationEngine | null = null;
  /** Worker tasks (DMAs, device batches, modules) not settled yet. */
  #tasksInFlight = 0;
  #closed = false;

  static {
    construct = (options, customModels) => new Platform(kCreate, options, customModels);
  }

  /** Use createPlatform(). */
  private constructor(token: typeof kCreate, options: ResolvedPlatformOptions, customModels: readonly DeviceModel[]) {
    if (token !== kCreate) throw Errors.UseCreatePlatform();
    this.options = Object.freeze(options);
    this.arch = options.arch;
    // On this thread alone, nothing needs to be shared: no SharedArrayBuffer at all.
    const allocate = bufferAllocatorOf(options);
    this.memory = new GuestMemory(options.guestMemory ?? options.memoryBytes, allocate);
    this.#shared = createSharedState(this.memory.bytes, options, allocate);
    this.#deviceBuffers = createDeviceBuffers(options.maxFunctions, options.deviceMemoryBytes, allocate);
    const devices = attachDeviceState(this.#deviceBuffers);
    this.bus = new PciBus({
      capacity: options.maxFunctions,
      models: [...MODEL_LIST, ...customModels],
      devices,
      onDoorbell: (fn) => this.#scheduler.kick(fn.slot),
      inputMappingBase: options.inputMappingBase,
    });
    const { pool, inline } = createDataPlane(options, {
      shared: this.#shared,
      deviceBuffers: this.#deviceBuffers,
      devices,
      customModels,
      rebind: (bytes) => this.memory.rebind(bytes),
      onWorkerGone: (threadId) => this.#workerGone(threadId),
      // Once closing, a worker's late message is the shutdown's doing, not an error to report.
      onError: (error) => {
        if (!this.#closed) options.onCallbackError(error);
      },
    });
    this.#pool = pool;
    this.#inline = inline;
    this.#scheduler = new DeviceScheduler(this.bus, devices.control, {
      run: (slot) => this.#runTask<DeviceWorkResult>({ kind: 'device-work', device: slot }),
      ...(inline === null ? {} : { runNow: (slot: number) => inline.runDeviceNow(slot) }),
      drainFaults: () => this.#faults.drain(),
      onError: (fn, error) => this.#deviceError(fn, error),
      onCallbackError: (error) => options.onCallbackError(error),
    });
    this.#iommu = new IommuCore(this.memory, this.bus, this.#shared, {
      arch: options.arch,
      policy: options.policy,
      faultReportingEx: options.faultReportingEx,
      onCallbackError: options.onCallbackError,
    });
    // The IOMMU sits between every function and memory from the start (pci_setup_iommu).
    this.bus.setupIommu(this.#iommu.contexts);
    this.#v2 = buildInterfaceV2(this.#iommu);
    this.#faults = new FaultDispatcher(this.#shared.faultRings, (record) =>
      deliverFault(this.#iommu, record, options.iommuBaseAddress, options.onCallbackError),
    );
    // With the data plane on this thread, faults are drained after each batch and DMA call
    // (and by drainFaults()); there is no other thread to wait for, and local memory cannot be waited on.
    if (inline === null) this.#faults.start();
    internals.set(this, {
      iommu: this.#iommu,
      runDevice: (fn) => {
        this.#checkDevice(fn);
        this.#scheduler.kick(fn.slot);
      },
      followGuestMemory: (source) => {
        if (inline === null) throw Errors.InvalidOption('dataPlane', "'main-thread' for guest memory that moves", options.dataPlane);
        inline.follow(source);
      },
    });
  }

  /**
   * IoGetIommuInterfaceEx(Version, Flags, InterfaceOut): Version 2 fills
   * InterfaceOut.value = { Size: 0xC0, Version: 2, V2 } with the 22 routines.
   */
  IoGetIommuInterfaceEx(Version: number, Flags: number, InterfaceOut: Out<DMA_IOMMU_INTERFACE_EX>): NTSTATUS {
    return getIommuInterfaceEx(this.#v2, Version, Flags, InterfaceOut);
  }

  /** One DMA issued by `pdo` from a worker thread, through the IOMMU. */
  async dma(pdo: PciFunction, request: DmaRequest): Promise<DmaResult> {
    const task = { kind: 'dma' as const, device: this.#checkDevice(pdo), ...checkDmaRequest(request, 'request') };
    const result = await this.#runTask<DmaResult>(task);
    // Hand this DMA's fault (if any) to its handler before the caller resumes.
    this.#faults.drain();
    return result;
  }

  /** Several DMAs issued by `pdo` back to back in one worker task (a device's burst); results in order. */
  async dmaBatch(pdo: PciFunction, requests: readonly DmaRequest[]): Promise<DmaResult[]> {
    const device = this.#checkDevice(pdo);
    if (!Array.isArray(requests)) throw Errors.InvalidArgument('requests', 'an array of DMA requests', requests);
    const task = { kind: 'dma-batch' as const, device, requests: requests.map((request, i) => checkDmaRequest(request, `requests[${i}]`)) };
    const results = await this.#runTask<DmaResult[]>(task);
    this.#faults.drain();
    return results;
  }

  /**
   * Runs `exportName` of the ES module at `moduleUrl` in a DMA worker, as
   * `fn(runtime, args)` where `runtime` gives the device side of the IOMMU (runtime.portFor(pdo.slot)
   * is that function's DMA port). For custom device models and benchmarks; `args` and the
   * result cross threads by structured clone.
   */
  async runInWorker<Result>(moduleUrl: ModuleUrl, exportName: string, args?: unknown): Promise<Result> {
    if (this.#closed) throw Errors.PlatformClosed();
    let url: unknown;
    try {
      url = typeof moduleUrl === 'object' && moduleUrl !== null ? (moduleUrl as { href?: unknown }).href : moduleUrl;
    } catch {
      url = undefined; // a Proxy whose traps throw
    }
    if (typeof url !== 'string') throw Errors.InvalidArgument('moduleUrl', 'a URL or string', moduleUrl);
    if (typeof exportName !== 'string') throw Errors.InvalidArgument('exportName', 'a string', exportName);
    // Arguments cross threads by structured clone: refuse what cannot be cloned here, by name,
    // rather than as a DataCloneError from the worker pool.
    try {
      structuredClone(args);
    } catch {
      throw Errors.InvalidArgument('args', 'a structured-cloneable value', args);
    }
    const result = await this.#runTask<Result>({ kind: 'module', url, export: exportName, args });
    this.#faults.drain();
    return result;
  }

  /**
   * What `Domain` translates `logicalAddress` to right now, read from the page tables (not
   * from any IOTLB) on this thread. Raises no fault and changes nothing; undefined for a
   * handle that is not a live domain.
   */
  inspectTranslation(Domain: IOMMU_DMA_DOMAIN, logicalAddress: number): TranslationView | undefined {
    const domain = this.#iommu.domains.get(Domain);
    if (domain === undefined) return undefined;
    if (!Number.isSafeInteger(logicalAddress) || logicalAddress < 0)
      throw Errors.ArgumentOutOfRange('logicalAddress', 'a non-negative safe integer', logicalAddress);
    return inspectTranslation(this.#iommu, domain, logicalAddress);
  }

  /** A summary of a live domain (mappings, free logical space, page tables), or undefined. */
  describeDomain(Domain: IOMMU_DMA_DOMAIN): DomainSummary | undefined {
    const domain = this.#iommu.domains.get(Domain);
    return domain === undefined ? undefined : describeDomain(this.#iommu, domain);
  }

  /** Page tables (2 KiB each) in use across all domains. */
  get pageTablesInUse(): number {
    return this.#iommu.tables.tablesInUse;
  }

  /**
   * Changes the DMA-protection policy at run time and calls the state-change callbacks of
   * exactly the devices whose available domain types changed. Devices stay attached.
   */
  setPolicy(policy: Partial<DmaProtectionPolicy>): void {
    if (typeof policy !== 'object' || policy === null) throw Errors.InvalidArgument('policy', 'an object', policy);
    const next: Record<string, unknown> = { ...this.#iommu.policy };
    for (const [key, value] of Object.entries(policy)) {
      const problem = policyFieldProblem(key, value);
      if (problem !== null) throw Errors.InvalidArgument(`policy.${key}`, problem, value);
      next[key] = value;
    }
    this.#iommu.policy = next as unknown as DmaProtectionPolicy;
    reportStateChanges(this.#iommu);
  }

  /** The DMA-protection policy now. */
  get policy(): Readonly<DmaProtectionPolicy> {
    return { ...this.#iommu.policy };
  }

  /** Fault counts since the platform started (see FaultStats for how they add up). */
  faultStats(): FaultStats {
    this.#faults.drain();
    return this.#faults.stats();
  }

  /**
   * Each running DMA worker, in slot order: its slot, thread id, whether it runs a task now,
   * and its IOTLB hits and misses as of its last finished task. Workers publish these into
   * their slot in shared memory at the end of each task, so asking costs the data plane
   * nothing. A worker that replaces a dead one takes its slot and counts from zero.
   */
  workerStats(): WorkerStats[] {
    return this.#shared.workerSlots.stats();
  }

  /**
   * A DMA port for `pdo` on this thread, for emulators whose device models run on the main
   * thread (v86 and the like). It translates through the same IOMMU state, IOTLB-cached,
   * and reports faults through the main thread's ring; call platform.drainFaults() (or, with
   * worker threads, await anything) to have them delivered. With dataPlane 'main-thread' it is
   * the very port the function's device model uses.
   */
  mainThreadPort(pdo: PciFunction): DmaPort {
    this.#checkDevice(pdo);
    if (this.#inline !== null) return this.#inline.runtime.portFor(pdo.slot);
    if (this.#mainEngine === null) {
      // The main thread's ring is the last one; no worker ever claims it.
      const slot = this.#shared.faultRings.ringCount - 1;
      this.#mainEngine = new TranslationEngine(this.#shared, slot, { entries: this.options.iotlbEntries, ways: this.options.iotlbWays }, false);
    }
    return new DmaPort(this.#mainEngine, this.memory.bytes, this.#shared.invalidations.header, pdo.slot);
  }

  /** Delivers every fault queued so far to its handler, now. */
  drainFaults(): void {
    this.#faults.drain();
  }

  /** Resolves once no device model has work in flight (every doorbell so far has been served). */
  devicesIdle(): Promise<void> {
    return this.#scheduler.idle();
  }

  /** Device-model batches run so far, and how many failed (a model threw or its worker died). */
  get deviceBatches(): { run: number; failed: number } {
    return { run: this.#scheduler.batches, failed: this.#scheduler.failures };
  }

  /**
   * The whole machine's state as one MessagePack document (see machine/snapshot/): guest RAM
   * (unless `guestMemory: false`, for an emulator that saves its RAM itself), the PCI bus and
   * device state, and the IOMMU's domains, mappings, tokens, devices and attachments.
   * restorePlatform(bytes) builds a platform in that state. Nothing may run meanwhile: with a
   * device batch or a dma()/runInWorker() call in flight it throws (await them first).
   */
  saveState(options: { guestMemory?: boolean } = {}): Uint8Array {
    if (this.#closed) throw Errors.PlatformClosed();
    if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
    if (options.guestMemory !== undefined && typeof options.guestMemory !== 'boolean')
      throw Errors.InvalidArgument('options.guestMemory', 'a boolean', options.guestMemory);
    if (this.#scheduler.busy) throw Errors.SnapshotWhileBusy('a device batch is in flight');
    if (this.#tasksInFlight > 0) throw Errors.SnapshotWhileBusy(`${this.#tasksInFlight} worker task(s) are in flight`);
    // Faults already raised belong to the past: their handlers run before the state is taken.
    this.#faults.drain();
    return encodeSnapshot(
      capturePlatform({
        options: this.options,
        memory: this.memory,
        bus: this.bus,
        iommu: this.#iommu,
        pending: (slot) => this.#scheduler.pending(slot),
        guestMemory: options.guestMemory ?? true,
      }),
    );
  }

  /** Stops the workers (device batches in flight are abandoned); the process can exit afterwards. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduler.close();
    await this.#pool?.close();
    this.#faults.drain();
    await this.#faults.close();
  }

  #checkDevice(pdo: PciFunction): number {
    if (this.#closed) throw Errors.PlatformClosed();
    if (!this.bus.owns(pdo)) throw Errors.NotAFunctionOfThisBus('pdo');
    return pdo.slot;
  }

  #runTask<Result>(task: WorkerTask): Promise<Result> {
    if (this.#pool === null) return Promise.reject(Errors.NoWorkers());
    this.#tasksInFlight++;
    return this.#pool.run<Result>(task).finally(() => this.#tasksInFlight--);
  }

  /** A device batch failed: options.onDeviceError hears of it (by default, a warning). */
  #deviceError(fn: PciFunction, error: unknown): void {
    // close() abandons batches in flight: their failure is expected, not news.
    if (this.#closed) return;
    try {
      this.options.onDeviceError(fn, error);
    } catch (thrown) {
      this.options.onCallbackError(thrown);
    }
  }

  #workerGone(threadId: number): void {
    const slot = this.#shared.workerSlots.slotOf(threadId);
    if (slot < 0) return;
    // Deliver what the worker managed to report, then free its slot and ring for a successor.
    this.#faults.drain();
    this.#shared.workerSlots.release(slot);
  }
}

/** Builds guest memory, the PCI bus, the IOMMU and the worker pool (loading custom device models first). */
export async function createPlatform(options?: PlatformOptions): Promise<Platform> {
  const resolved = resolvePlatformOptions(options);
  const models: DeviceModel[] = [];
  for (const url of resolved.deviceModels) {
    const model = deviceModelOf(await loadModule(url), url);
    if (MODEL_LIST.some((m) => m.name === model.name) || models.some((m) => m.name === model.name)) {
      throw Errors.InvalidOption('deviceModels', 'models with names of their own', model.name);
    }
    models.push(model);
  }
  return construct(resolved, models);
}
