import { isShared } from '../../base/buffers.js';
import { isInstanceOf } from '../../base/values.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import { PCI_COMMAND } from '../../hardware/pci-config-space.js';
import { Errors } from '../../base/errors.js';
import { policyFieldProblem } from '../../iommu/control/dma-protection-policy.js';
import { createPlatform, internalsOf, type Platform } from '../platform.js';
import { type PlatformOptions, requireSharedMemory } from '../platform-options.js';
import { applyMemoryImage } from './memory-image.js';
import { restoreIommu, type RestoredHandles } from './restore-iommu.js';
import { decodeSnapshot, integerIn, list, memoryImage, record, tuples } from './snapshot-format.js';

/**
 * What may differ on the restored platform: how it runs, never what the machine is. Sizes,
 * architecture and the bus come from the snapshot.
 */
export type RestoreOptions = Pick<
  PlatformOptions,
  | 'guestMemory'
  | 'dataPlane'
  | 'workers'
  | 'workerUrl'
  | 'deviceModels'
  | 'onCallbackError'
  | 'onDeviceError'
  | 'iotlbEntries'
  | 'iotlbWays'
  | 'faultRingCapacity'
  | 'invalidationLogCapacity'
>;

/** The options restorePlatform takes: every key of RestoreOptions, once. */
const RESTORE_OPTION_NAMES = Object.keys({
  guestMemory: true,
  dataPlane: true,
  workers: true,
  workerUrl: true,
  deviceModels: true,
  onCallbackError: true,
  onDeviceError: true,
  iotlbEntries: true,
  iotlbWays: true,
  faultRingCapacity: true,
  invalidationLogCapacity: true,
} satisfies Record<keyof RestoreOptions, true>);
const RESTORE_OPTIONS: ReadonlySet<string> = new Set(RESTORE_OPTION_NAMES);

export interface RestoredPlatform extends RestoredHandles {
  platform: Platform;
}

/**
 * A new platform in the state `snapshot` (from platform.saveState()) describes: guest RAM
 * and its page allocator, the PCI bus (configuration spaces, register files, device-private
 * memory, wires, doorbells not yet served), and the IOMMU (policy, domains with their
 * allocators, mappings, identity ranges and tokens, DMA devices and their attachments).
 * Handles keep their ids: look them up in `domains`, `devices` and `tokens`. Callbacks are
 * not in a snapshot: register again what `rebind` lists, and interrupt handlers.
 * A malformed snapshot throws a TypeError naming the part at fault, and nothing is left running.
 */
export async function restorePlatform(snapshot: Uint8Array, options: RestoreOptions = {}): Promise<RestoredPlatform> {
  if ((options as RestoreOptions | null)?.dataPlane !== 'main-thread') requireSharedMemory();
  const saved = decodeSnapshot(snapshot);
  if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!RESTORE_OPTIONS.has(key))
      throw Errors.InvalidOption(
        key,
        `left out: the snapshot decides it (restore takes ${RESTORE_OPTION_NAMES.join(', ')})`,
        (options as Record<string, unknown>)[key],
      );
  }
  const machine = record(saved.options, 'options');
  const memoryBytes = integerIn(machine.memoryBytes, 0, 2 ** 40, 'options.memoryBytes');
  if (saved.memory === null && options.guestMemory === undefined) {
    throw Errors.InvalidSnapshot('it holds no guest memory (saved with { guestMemory: false }): pass options.guestMemory');
  }
  const ram = options.guestMemory;
  const ramBytes = isInstanceOf<Uint8Array>(ram, Uint8Array) || (typeof ram === 'object' && ram !== null && isShared(ram)) ? ram.byteLength : undefined;
  if (ramBytes !== undefined && ramBytes !== memoryBytes) {
    throw Errors.InvalidOption('guestMemory', `${memoryBytes} bytes of RAM (the snapshot's guest memory)`, ramBytes);
  }
  // The saved worker count is how the old platform ran; on this thread there are none.
  if (options.dataPlane === 'main-thread' && options.workers === undefined) delete machine.workers;
  const policy = record(record(saved.iommu, 'iommu').policy, 'iommu.policy');
  if (policyFieldProblem('kernelDmaProtection', policy.kernelDmaProtection) !== null || policyFieldProblem('userUnlocked', policy.userUnlocked) !== null) {
    throw Errors.InvalidSnapshot('iommu.policy is malformed');
  }
  if (policyFieldProblem('dmaGuardPolicy', policy.dmaGuardPolicy) !== null)
    throw Errors.InvalidSnapshot('iommu.policy.dmaGuardPolicy is not an integer in 0..2');
  // The platform starts with the saved policy; createPlatform checks the other options as usual.
  const platform = await createPlatform({
    ...(machine as PlatformOptions),
    kernelDmaProtection: policy.kernelDmaProtection as boolean,
    dmaGuardPolicy: policy.dmaGuardPolicy as 0 | 1 | 2,
    userUnlocked: policy.userUnlocked as boolean,
    ...options,
  });
  try {
    if (saved.memory !== null) {
      const image = memoryImage(saved.memory, 'memory');
      if (image.bytes !== platform.memory.size)
        throw Errors.InvalidSnapshot(`memory holds ${image.bytes} bytes, options.memoryBytes says ${platform.memory.size}`);
      applyMemoryImage(image, platform.memory.bytes);
    }
    const allocation = record(saved.allocation, 'allocation');
    if (!platform.memory.loadAllocationState({ runs: tuples(allocation.runs, 2, 'allocation.runs'), cursor: allocation.cursor as number })) {
      throw Errors.InvalidSnapshot('allocation does not fit guest memory');
    }
    const functions = restoreFunctions(platform, list(saved.functions, 'functions'));
    const { iommu, runDevice } = internalsOf(platform);
    const handles = restoreIommu(iommu, saved.iommu, functions);
    // Doorbells rung before the snapshot that no batch had served: serve them now.
    for (const [slot, fn] of functions.entries()) if ((saved.functions[slot] as { pending?: unknown }).pending === true) runDevice(fn);
    return { platform, ...handles };
  } catch (error) {
    await platform.close();
    throw error;
  }
}

/** Adds the saved functions in slot order (so slots, BARs and arena pages come out the same) and loads their state. */
function restoreFunctions(platform: Platform, saved: unknown[]): PciFunction[] {
  const functions = saved.map((entry, slot) => {
    const what = `functions[${slot}]`;
    const f = record(entry, what);
    let fn: PciFunction;
    try {
      fn = platform.bus.addFunction({
        bus: f.bus as number,
        device: f.device as number,
        function: f.function as number,
        model: f.model as string,
        modelOptions: f.modelOptions as Record<string, unknown>,
        externalFacing: f.externalFacing as boolean,
        behindIommu: f.behindIommu as boolean,
        bars: f.bars as never,
        busMasterEnable: false,
      });
    } catch (error) {
      throw Errors.InvalidSnapshot(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!(f.config instanceof Uint8Array) || f.config.length !== fn.config.bytes.length)
      throw Errors.InvalidSnapshot(`${what}.config is not a 256-byte configuration space`);
    fn.config.bytes.set(f.config);
    // Rewriting the command register mirrors Bus Master Enable into the device context.
    fn.config.write16(PCI_COMMAND, fn.config.read16(PCI_COMMAND));
    const registers = fn.registers;
    if ((registers === null) !== (f.registers === null)) throw Errors.InvalidSnapshot(`${what}.registers do not match model '${fn.model}'`);
    if (registers !== null) {
      if (!(f.registers instanceof Uint8Array) || f.registers.length !== registers.size)
        throw Errors.InvalidSnapshot(`${what}.registers are not ${registers.size} bytes`);
      new Uint8Array(registers.words.buffer, registers.words.byteOffset, registers.size).set(f.registers);
    }
    const privateMemory = platform.bus.privateMemoryOf(fn);
    if (f.privateMemory !== null) {
      const image = memoryImage(f.privateMemory, `${what}.privateMemory`);
      if (image.bytes !== privateMemory.length)
        throw Errors.InvalidSnapshot(`${what}.privateMemory is ${image.bytes} bytes, the model has ${privateMemory.length}`);
      applyMemoryImage(image, privateMemory);
    }
    return fn;
  });
  for (const [slot, entry] of saved.entries()) {
    const peer = integerIn((entry as { peer?: unknown }).peer, -1, functions.length - 1, `functions[${slot}].peer`);
    if (peer > slot) platform.bus.connect(functions[slot]!, functions[peer]!);
  }
  return functions;
}
