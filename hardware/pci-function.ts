import { Errors } from '../base/errors.js';
import type { FunctionModel } from './function-model.js';
import {
  type BarDefinition,
  PCI_COMMAND,
  PCI_COMMAND_BUS_MASTER,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MEMORY_SPACE,
  PciConfigSpace,
} from './pci-config-space.js';
import type { RegisterFile } from './register-file.js';
import type { opaque } from '../base/opaque.js';
import type { Requester } from './substrate.js';

/** An MSI handler: runs on the main thread when the device raises `vector`. */
export type InterruptHandler = (vector: number, fn: PciFunction) => void;

export interface PciFunctionOptions {
  bus: number;
  device: number;
  function: number;
  /** Default 0x1af4 (an emulated device). */
  vendorId?: number;
  deviceId?: number;
  /** 24-bit class code (class << 16 | subclass << 8 | prog-if). */
  classCode?: number;
  revisionId?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** Whether the function's root port is external-facing (Thunderbolt and the like). Default false. */
  externalFacing?: boolean;
  /** Whether the IOMMU sits between this function and memory. Default true. */
  behindIommu?: boolean;
  /**
   * Bus Master Enable after enumeration. Default true: the platform stands for firmware and
   * an OS that have enumerated the bus; pass false for the reset state.
   */
  busMasterEnable?: boolean;
  /** Device model run by the worker pool for this function (default 'dma-test'). */
  model?: string;
  /** Options of the device model (for example { namespaceBytes } for 'nvme'). */
  modelOptions?: Readonly<Record<string, unknown>>;
  /** Extra BARs; a model with registers gets its register file as BAR0 ahead of these. */
  bars?: readonly BarDefinition[];
}

/**
 * One PCI function on the emulated bus. This object is the PDO (physical device object) the
 * V2 routines take: CreateDevice, QueryInputMappings, and FAULT_INFORMATION's
 * PhysicalDeviceObject all refer to it.
 */
export class PciFunction implements Requester {
  /** The PDO's type brand (types only: no such property exists). */
  declare readonly [opaque]: 'DEVICE_OBJECT';
  readonly bus: number;
  readonly device: number;
  readonly function: number;
  /** Slot in the device context table. */
  readonly slot: number;
  /** bus << 8 | device << 3 | function. */
  readonly requesterId: number;
  readonly inputMappingId: number;
  readonly externalFacing: boolean;
  readonly behindIommu: boolean;
  readonly model: string;
  readonly config: PciConfigSpace;
  readonly bars: readonly BarDefinition[];
  /** The device model's register file (BAR0), or null for a model without registers. */
  registers: RegisterFile | null = null;
  /** Options the device model was created with. */
  readonly modelOptions: Readonly<Record<string, unknown>>;
  /** The driver's MSI handler (setInterruptHandler). */
  #interruptHandler: InterruptHandler | null = null;
  /** The model's INTx level (FunctionModel.intxAsserted), or null for a model with MSI only. */
  readonly #intx: ((registers: RegisterFile) => boolean) | null;
  /** Interrupts delivered to the handler, and interrupts raised while no handler was set. */
  interruptsDelivered = 0;
  interruptsLost = 0;

  constructor(
    options: PciFunctionOptions & { slot: number; inputMappingBase: number },
    identity: Pick<FunctionModel, 'vendorId' | 'deviceId' | 'classCode' | 'intxAsserted'>,
    onCommand: (fn: PciFunction, command: number) => void,
  ) {
    this.#intx = identity.intxAsserted?.bind(identity) ?? null;
    this.bus = options.bus;
    this.device = options.device;
    this.function = options.function;
    this.slot = options.slot;
    this.requesterId = (options.bus << 8) | (options.device << 3) | options.function;
    this.inputMappingId = options.inputMappingBase + this.requesterId;
    this.externalFacing = options.externalFacing ?? false;
    this.behindIommu = options.behindIommu ?? true;
    this.model = options.model ?? 'dma-test';
    this.modelOptions = Object.freeze({ ...(options.modelOptions ?? {}) });
    this.bars = Object.freeze([...(options.bars ?? [])]);
    this.config = new PciConfigSpace(
      {
        vendorId: options.vendorId ?? identity.vendorId,
        deviceId: options.deviceId ?? identity.deviceId,
        classCode: options.classCode ?? identity.classCode,
        revisionId: options.revisionId ?? 1,
        subsystemVendorId: options.subsystemVendorId ?? 0x1af4,
        subsystemId: options.subsystemId ?? 0x1100,
        interruptPin: 1,
      },
      this.bars,
      (command) => onCommand(this, command),
    );
  }

  /** "bb:dd.f", as lspci prints it. */
  get bdf(): string {
    const hex2 = (n: number) => n.toString(16).padStart(2, '0');
    return `${hex2(this.bus)}:${hex2(this.device)}.${this.function}`;
  }

  get busMasterEnabled(): boolean {
    return (this.config.read16(PCI_COMMAND) & PCI_COMMAND_BUS_MASTER) !== 0;
  }

  /** Sets or clears Bus Master Enable (and Memory Space) in the command register. */
  setBusMaster(enabled: boolean): void {
    if (typeof enabled !== 'boolean') throw Errors.InvalidArgument('enabled', 'a boolean', enabled);
    const command = this.config.read16(PCI_COMMAND);
    const flags = PCI_COMMAND_BUS_MASTER | PCI_COMMAND_MEMORY_SPACE;
    this.config.write16(PCI_COMMAND, enabled ? command | flags : command & ~PCI_COMMAND_BUS_MASTER);
  }

  /** Whether the function has an INTx pin (its model says when it is asserted), for machines without MSI. */
  get hasIntx(): boolean {
    return this.#intx !== null;
  }

  /**
   * The level of the INTx pin now: the model asserts it (NVMe: a completion queue holds
   * entries the driver has not consumed) and the Command register's Interrupt Disable is clear.
   */
  get intxAsserted(): boolean {
    if (this.#intx === null || this.registers === null || (this.config.read16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) !== 0) return false;
    return this.#intx(this.registers);
  }

  /** Installs (or, with null, removes) the driver's MSI handler. */
  setInterruptHandler(handler: InterruptHandler | null): void {
    if (handler !== null && typeof handler !== 'function') throw Errors.InvalidArgument('handler', 'a function or null', handler);
    this.#interruptHandler = handler;
  }

  /** @internal Called by the platform on the main thread when the device raised `vector`. */
  deliverInterrupt(vector: number): void {
    const handler = this.#interruptHandler;
    if (handler === null) {
      this.interruptsLost++;
      return;
    }
    this.interruptsDelivered++;
    handler(vector, this);
  }

  toString(): string {
    return `PciFunction(${this.bdf})`;
  }
}
