import {
  createPlatform,
  type DMA_IOMMU_INTERFACE_EX,
  type DmaResult,
  DomainTypeTranslate,
  type DriverBase,
  type FAULT_INFORMATION,
  faultTypeName,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  NicDriver,
  type Out,
  type PciFunction,
  type Platform,
  STATUS_SUCCESS,
  type WorkerStats,
} from 'viommu';
import { deviceStatsOf, startTraffic, type Traffic } from '../../stress/runner.js';
import { type DeviceStats, keepBusy } from '../../traffic/device-stats.js';

/**
 * The machine behind the web demo, without any DOM: the devices of `npm start` (two copy
 * engines, two NVMe-like controllers, a wired pair of NICs) running verified traffic on Web
 * Workers, each behind its own IOMMU domain; the faults their drivers' FaultHandlers receive,
 * time-stamped; a buffer mapping that can be revoked under a NIC; and the misbehaving device
 * of `npm start`, which can be let loose.
 */
export type DeviceKind = DeviceStats['kind'] | 'misbehaving';

/** One FAULT_INFORMATION as a FaultHandler received it, decoded. */
export interface FaultEvent {
  /** Seconds since the machine started. */
  at: number;
  bdf: string;
  kind: DeviceKind;
  type: number;
  typeName: string;
  address: number;
  write: boolean;
  inputMappingId: number;
  /** The domain handle's id, or null if the domain is gone. */
  domainId: number | null;
  iommuBaseAddress: number;
  flags: number;
}

/** Something a device or driver reported (a failed transfer, a revoked buffer). */
export interface DeviceEvent {
  at: number;
  bdf: string;
  text: string;
  tone: 'fault' | 'error' | 'info';
}

export interface DomainFigures {
  bdf: string;
  kind: DeviceKind;
  domainId: number;
  mappings: number;
  mappedPages: number;
  pageTables: number;
}

/** Where the misbehaving device reaches: a page of guest RAM it knows the address of, and a made-up IOVA. */
const SCRIBBLE_IOVA = 0x4000_0000;
const ROGUE_PERIOD_MS = 400;

interface Rogue {
  fn: PciFunction;
  domainId: number;
  secret: number;
  faults: FAULT_INFORMATION[];
  attempts: number;
}

export class DemoMachine {
  readonly platform: Platform;
  readonly traffic: readonly Traffic[];
  readonly faults: FaultEvent[] = [];
  readonly events: DeviceEvent[] = [];
  /** Transfers of the traffic that threw (a driver error); must stay 0. */
  laneErrors = 0;
  /** TX buffers revoked by the user, and those whose packet then failed. */
  revocations = 0;
  readonly #started = performance.now();
  readonly #drivers: Array<{ driver: DriverBase; kind: DeviceKind; seen: number; failures: number }>;
  #running: Promise<void> | null = null;
  #stopping = false;
  #rogue: Rogue | null = null;
  #rogueLoop: Promise<void> | null = null;
  #rogueOn = false;

  private constructor(platform: Platform, traffic: Traffic[]) {
    this.platform = platform;
    this.traffic = traffic;
    this.#drivers = traffic.flatMap((t) => t.drivers.map((driver) => ({ driver, kind: kindOf(driver), seen: 0, failures: 0 })));
  }

  static async start(options: { workers?: number; seed?: number } = {}): Promise<DemoMachine> {
    const platform = await createPlatform({
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      memoryBytes: 128 * 1024 * 1024,
      deviceMemoryBytes: 64 * 1024 * 1024,
      pageTableBytes: 16 * 1024 * 1024,
    });
    const traffic = await startTraffic(platform, {
      workers: platform.options.workers,
      devicesPerKind: 2,
      kinds: ['copy-engine', 'nvme', 'nic'],
      seconds: 0,
      minBytes: 512,
      maxBytes: 64 * 1024,
      churn: true,
      faultRate: 0,
      depth: 4,
      seed: options.seed ?? 2026,
      json: null,
      quiet: true,
    });
    const machine = new DemoMachine(platform, traffic);
    machine.resume();
    return machine;
  }

  /** Seconds since the machine started. */
  now(): number {
    return (performance.now() - this.#started) / 1000;
  }

  get running(): boolean {
    return this.#running !== null && !this.#stopping;
  }

  /** Every device's traffic figures (NIC pairs flattened). */
  devices(): DeviceStats[] {
    return deviceStatsOf(this.traffic);
  }

  /** Starts (again) the traffic on every device: `depth` transfers in flight each. */
  resume(): void {
    if (this.#running !== null) return;
    this.#stopping = false;
    const lane = (t: Traffic) => async () => {
      try {
        await t.one();
      } catch (error) {
        this.laneErrors++;
        this.#event(t.drivers[0]!.fn.bdf, `transfer failed: ${error instanceof Error ? error.message : String(error)}`, 'error');
      }
    };
    this.#running = Promise.all(this.traffic.map((t) => keepBusy(4, () => this.#stopping, lane(t)))).then(() => {
      this.#running = null;
    });
  }

  /** Lets the transfers in flight finish, and starts no more. */
  async pause(): Promise<void> {
    this.#stopping = true;
    await this.#running;
  }

  /**
   * Brings the fault list and the event log up to date: new FAULT_INFORMATION records the
   * drivers' FaultHandlers received, and transfers the devices failed since the last look.
   */
  poll(): void {
    const at = this.now();
    for (const entry of this.#drivers) {
      for (; entry.seen < entry.driver.faults.length; entry.seen++) this.#fault(at, entry.driver.fn.bdf, entry.kind, entry.driver.faults[entry.seen]!);
      if (entry.driver instanceof NicDriver && entry.driver.txFailed > entry.failures) {
        const failed = entry.driver.txFailed - entry.failures;
        entry.failures = entry.driver.txFailed;
        this.#event(entry.driver.fn.bdf, `the NIC failed ${failed} packet${failed === 1 ? '' : 's'}: TX descriptor status DESC_ERROR (a DMA fault)`, 'error');
      }
    }
  }

  /** The NIC drivers, whose TX buffers can be revoked. */
  nics(): NicDriver[] {
    return this.#drivers.map((entry) => entry.driver).filter((driver): driver is NicDriver => driver instanceof NicDriver);
  }

  /**
   * Unmaps the TX buffer the NIC at `bdf` will send its next packet from, behind its
   * driver's back (the driver maps it again once the device has reported the packet):
   * the device's DMA from it faults, the FaultHandler gets the FAULT_INFORMATION, and the
   * device fails that packet.
   */
  revokeTxBuffer(bdf: string): { iova: number; bytes: number } {
    const nic = this.nics().find((driver) => driver.fn.bdf === bdf);
    if (nic === undefined) throw new Error(`no NIC at ${bdf}`);
    const buffer = nic.revokeTxBuffer(0);
    this.revocations++;
    this.#event(bdf, `TX buffer at IOVA 0x${buffer.iova.toString(16)} (${buffer.bytes} bytes) unmapped: UnmapLogicalRange`, 'info');
    return { iova: buffer.iova, bytes: buffer.bytes };
  }

  /** The misbehaving device: set up on first use, then DMAs where nothing is mapped for it until stopped. */
  startMisbehaving(): { bdf: string; domainId: number; secret: number; scribble: number } {
    const rogue = (this.#rogue ??= this.#createRogue());
    this.#rogueOn = true;
    this.#rogueLoop ??= this.#misbehave(rogue).finally(() => {
      this.#rogueLoop = null;
    });
    return { bdf: rogue.fn.bdf, domainId: rogue.domainId, secret: rogue.secret, scribble: SCRIBBLE_IOVA };
  }

  stopMisbehaving(): void {
    this.#rogueOn = false;
  }

  get misbehaving(): boolean {
    return this.#rogueOn;
  }

  /** Each device's domain: mappings, mapped pages, page tables. */
  domains(): DomainFigures[] {
    const entries: Array<{ bdf: string; kind: DeviceKind; domain: IOMMU_DMA_DOMAIN }> = this.#drivers.map((e) => ({
      bdf: e.driver.fn.bdf,
      kind: e.kind,
      domain: e.driver.domain,
    }));
    if (this.#rogue !== null && this.#rogueDomain !== undefined) entries.push({ bdf: this.#rogue.fn.bdf, kind: 'misbehaving', domain: this.#rogueDomain });
    return entries.flatMap(({ bdf, kind, domain }) => {
      const summary = this.platform.describeDomain(domain);
      if (summary === undefined) return [];
      const logical = summary.ranges.filter((range) => range.kind !== 'reserved');
      return [
        {
          bdf,
          kind,
          domainId: (domain as { id: number }).id,
          mappings: logical.length,
          mappedPages: logical.reduce((sum, range) => sum + range.pages, 0),
          pageTables: summary.pageTables,
        },
      ];
    });
  }

  workerStats(): WorkerStats[] {
    return this.platform.workerStats();
  }

  async stop(): Promise<void> {
    this.#rogueOn = false;
    await this.pause();
    await this.#rogueLoop;
    await this.platform.devicesIdle();
    for (const t of this.traffic) await t.stop();
    await this.platform.close();
  }

  #rogueDomain: IOMMU_DMA_DOMAIN | undefined;

  #createRogue(): Rogue {
    const platform = this.platform;
    const fn = platform.bus.addFunction({ bus: 9, device: 0, function: 0 });
    const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
    platform.IoGetIommuInterfaceEx(2, 0, table);
    const V2 = table.value!.V2;
    const device: Out<IOMMU_DMA_DEVICE> = {};
    const domain: Out<IOMMU_DMA_DOMAIN> = {};
    const faults: FAULT_INFORMATION[] = [];
    const steps = [
      V2.CreateDevice(fn, null, device),
      V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 48 } }, null, domain),
      V2.AttachDeviceEx(domain.value!, device.value!),
      V2.SetDeviceFaultReportingEx(device.value!, fn.inputMappingId, true, {
        FaultHandler: (_: unknown, info: FAULT_INFORMATION) => {
          faults.push(info);
          this.#fault(this.now(), fn.bdf, 'misbehaving', info);
        },
      }),
    ];
    if (steps.some((status) => status !== STATUS_SUCCESS)) throw new Error('setting up the misbehaving device failed');
    this.#rogueDomain = domain.value!;
    const secret = platform.memory.allocatePages(1)[0]! * 4096;
    platform.memory.write(secret, new TextEncoder().encode('kernel secrets'));
    return { fn, domainId: (domain.value! as unknown as { id: number }).id, secret, faults, attempts: 0 };
  }

  /** Reads a physical address it happens to know, scribbles at a made-up IOVA, again and again. */
  async #misbehave(rogue: Rogue): Promise<void> {
    this.#event(rogue.fn.bdf, 'the misbehaving device starts: DMA with no mapping of its own', 'info');
    while (this.#rogueOn) {
      const n = rogue.attempts++;
      const scribble = SCRIBBLE_IOVA + (n % 16) * 4096;
      this.#report(rogue, `read 14 bytes at 0x${rogue.secret.toString(16)}`, await this.platform.dma(rogue.fn, { address: rogue.secret, length: 14 }));
      this.#report(rogue, `write 2 bytes at 0x${scribble.toString(16)}`, await this.platform.dma(rogue.fn, { address: scribble, write: [0xde, 0xad] }));
      await new Promise((resolve) => setTimeout(resolve, ROGUE_PERIOD_MS));
    }
    this.#event(rogue.fn.bdf, 'the misbehaving device stops', 'info');
  }

  #report(rogue: Rogue, what: string, result: DmaResult): void {
    if (result.ok) this.#event(rogue.fn.bdf, `${what}: it went through (a bug!)`, 'error');
    else
      this.#event(
        rogue.fn.bdf,
        `${what}: refused by the IOMMU, the device reports ${faultTypeName(result.faultType)} at 0x${result.faultAddress.toString(16)}`,
        'error',
      );
  }

  #fault(at: number, bdf: string, kind: DeviceKind, info: FAULT_INFORMATION): void {
    const arm = info.Arm64;
    const fault = arm ?? info.X64;
    if (fault === undefined) return;
    this.faults.push({
      at,
      bdf,
      kind,
      type: fault.Type,
      typeName: faultTypeName(fault.Type),
      address: fault.FaultAddress,
      write: arm?.Flags.WriteNotRead ?? false,
      inputMappingId: arm?.InputMappingId ?? 0,
      domainId: fault.DomainHandle === null ? null : (fault.DomainHandle as unknown as { id: number }).id,
      iommuBaseAddress: fault.IommuBaseAddress,
      flags: fault.Flags.AsULONG,
    });
    // Keep the page's memory bounded on a long run.
    if (this.faults.length > 5000) this.faults.splice(0, 1000);
  }

  #event(bdf: string, text: string, tone: DeviceEvent['tone']): void {
    this.events.push({ at: this.now(), bdf, text, tone });
    if (this.events.length > 5000) this.events.splice(0, 1000);
  }
}

function kindOf(driver: DriverBase): DeviceKind {
  const model = driver.fn.model;
  return model === 'nvme' || model === 'nic' || model === 'copy-engine' ? model : 'misbehaving';
}
