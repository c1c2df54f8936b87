import { isInstanceOf } from '../base/values.js';
import { isShared } from '../base/buffers.js';
import { Errors } from '../base/errors.js';
import { warn } from '../base/warnings.js';
import { DEFAULT_MEMORY_BYTES } from '../hardware/guest-memory.js';
import type { PciFunction } from '../hardware/pci-function.js';
import { type Architecture, type DmaProtectionPolicy, policyFieldProblem } from '../iommu/control/dma-protection-policy.js';
import { defaultDmaWorkerUrl } from '../workers/dma-worker-url.js';
import { hardwareConcurrency } from '../workers/environment.js';

/**
 * Where a module is: an absolute URL string, or a URL object (`new URL('./model.js',
 * import.meta.url)`). Typed as anything with an absolute `href`, so that the declarations
 * need neither Node's nor the DOM's declaration of URL.
 */
export type ModuleUrl = string | { readonly href: string };

/** The most DMA workers a platform runs. */
const MAX_WORKERS = 64;

/** Where device models run and DMA is translated: DMA worker threads, or the platform's own thread. */
export type DataPlane = 'workers' | 'main-thread';

export interface PlatformOptions {
  /** Guest RAM in bytes (default 64 MiB); ignored when `guestMemory` is given. */
  memoryBytes?: number;
  /**
   * An emulator's own guest RAM, adopted as is: a SharedArrayBuffer, or a byte view of any
   * buffer (its offset a multiple of 8). A view of a non-shared buffer (v86's WebAssembly
   * memory) needs dataPlane 'main-thread': no worker can reach it.
   */
  guestMemory?: SharedArrayBuffer | Uint8Array;
  /**
   * 'workers' (default): device models run in DMA worker threads, over SharedArrayBuffers.
   * 'main-thread': they run on the platform's own thread, synchronously, inside the register
   * write that rings their doorbell, over plain ArrayBuffers: no worker and no
   * SharedArrayBuffer at all (see docs/embedding.md). `workers` must then be 0 or absent.
   */
  dataPlane?: DataPlane;
  /**
   * dataPlane 'main-thread' only: told after a device wrote guest RAM, with the physical range
   * [start, end). For emulators that cache code translated from guest memory (v86's JIT).
   */
  onDeviceWrite?: (start: number, end: number) => void;
  /** 'arm64' (default) or 'x64'. */
  arch?: Architecture;
  kernelDmaProtection?: boolean;
  /** 0 block all, 1 after unlock (default), 2 allow all. */
  dmaGuardPolicy?: 0 | 1 | 2;
  userUnlocked?: boolean;
  /** DMA worker threads, 0..64 (default: the machine's available parallelism, at most 64); 0 for a control plane without data plane. */
  workers?: number;
  /**
   * The DMA worker's module. By default the package finds its own (dist/workers/dma-worker.js);
   * an application that bundles viommu with a bundler that does not follow
   * `new URL('…', import.meta.url)` (esbuild) ships that file and passes its URL here.
   */
  workerUrl?: ModuleUrl;
  /** 'implemented' (default) or 'windows' (SetDeviceFaultReportingEx returns STATUS_NOT_IMPLEMENTED). */
  faultReportingEx?: 'implemented' | 'windows';
  /** Domains that can exist at once (default 1024). */
  maxDomains?: number;
  /** PCI functions the bus can hold (default 256). */
  maxFunctions?: number;
  /** Device-private memory of all device models (disks' media, NICs' queues), in bytes (default 256 MiB, committed as used). */
  deviceMemoryBytes?: number;
  /** Shared memory for managed page tables, in bytes (default 64 MiB: 32768 tables of 2 KiB). */
  pageTableBytes?: number;
  /** 4 KiB entries of each worker's IOTLB (default 4096), and its associativity (default 4). */
  iotlbEntries?: number;
  iotlbWays?: number;
  /** Records per worker fault ring (default 4096, a power of two). */
  faultRingCapacity?: number;
  /** Records in the invalidation log (default 4096, a power of two). */
  invalidationLogCapacity?: number;
  /** Added to each requester ID to form its input mapping ID (the segment's base; default 0). */
  inputMappingBase?: number;
  /** Reported as IommuBaseAddress in fault information (default 0x2b400000, an SMMUv3 base). */
  iommuBaseAddress?: number;
  /**
   * Your own device models: URLs of ES modules exporting a DeviceModel as `deviceModel` (or
   * default). Each is loaded on this thread and in every worker; functions name them by
   * `model` in addFunction. See docs/devices.md.
   */
  deviceModels?: readonly ModuleUrl[];
  /** Where errors thrown by FaultHandlers, interrupt handlers and state-change callbacks go (default: a warning). */
  onCallbackError?: (error: unknown) => void;
  /** Told when a device model's batch fails: the model threw, or its worker died (default: a warning). */
  onDeviceError?: (fn: PciFunction, error: unknown) => void;
}

/** Every option a platform understands; anything else is refused. */
const OPTION_NAMES: ReadonlySet<string> = new Set<keyof PlatformOptions>([
  'memoryBytes',
  'guestMemory',
  'dataPlane',
  'onDeviceWrite',
  'arch',
  'kernelDmaProtection',
  'dmaGuardPolicy',
  'userUnlocked',
  'workers',
  'workerUrl',
  'faultReportingEx',
  'maxDomains',
  'maxFunctions',
  'deviceMemoryBytes',
  'pageTableBytes',
  'iotlbEntries',
  'iotlbWays',
  'faultRingCapacity',
  'invalidationLogCapacity',
  'inputMappingBase',
  'iommuBaseAddress',
  'deviceModels',
  'onCallbackError',
  'onDeviceError',
]);

export type ResolvedPlatformOptions = Required<
  Omit<PlatformOptions, 'guestMemory' | 'dmaGuardPolicy' | 'kernelDmaProtection' | 'userUnlocked' | 'deviceModels' | 'workerUrl' | 'onDeviceWrite'>
> & {
  deviceModels: string[];
  /** The DMA worker module's absolute URL. */
  workerUrl: string;
  guestMemory: SharedArrayBuffer | Uint8Array | undefined;
  onDeviceWrite: ((start: number, end: number) => void) | null;
  policy: DmaProtectionPolicy;
};

/**
 * Shared memory is the data plane of worker threads: in a page that is not cross-origin
 * isolated SharedArrayBuffer does not exist, and no worker could do anything. (The data plane
 * on the platform's own thread, dataPlane 'main-thread', needs none.)
 */
export function requireSharedMemory(): void {
  if (typeof SharedArrayBuffer !== 'function') throw Errors.NoSharedArrayBuffer();
}

/** Checks every option once, naming the option at fault, and fills in the defaults. */
export function resolvePlatformOptions(options: PlatformOptions = {}): ResolvedPlatformOptions {
  if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
  if (options.dataPlane !== 'main-thread') requireSharedMemory();
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.has(key)) throw Errors.UnknownOption(key, [...OPTION_NAMES]);
    // Absent is undefined; null is a value, and not one any option takes.
    if ((options as Record<string, unknown>)[key] === null) throw Errors.InvalidOption(key, 'a value (leave it out for the default)', null);
  }
  if (options.memoryBytes !== undefined && typeof options.memoryBytes !== 'number')
    throw Errors.InvalidOption('memoryBytes', 'an integer number of bytes', options.memoryBytes);
  const arch = options.arch ?? 'arm64';
  if (arch !== 'arm64' && arch !== 'x64') throw Errors.InvalidOption('arch', "'arm64' or 'x64'", arch);
  const faultReportingEx = options.faultReportingEx ?? 'implemented';
  if (faultReportingEx !== 'implemented' && faultReportingEx !== 'windows') {
    throw Errors.InvalidOption('faultReportingEx', "'implemented' or 'windows'", faultReportingEx);
  }
  const dataPlane = options.dataPlane ?? 'workers';
  if (dataPlane !== 'workers' && dataPlane !== 'main-thread') throw Errors.InvalidOption('dataPlane', "'workers' or 'main-thread'", dataPlane);
  const onThisThread = dataPlane === 'main-thread';
  const guestMemory = options.guestMemory;
  if (
    guestMemory !== undefined &&
    !isInstanceOf<Uint8Array>(guestMemory, Uint8Array) &&
    !(typeof guestMemory === 'object' && guestMemory !== null && isShared(guestMemory))
  ) {
    throw Errors.InvalidOption('guestMemory', 'a SharedArrayBuffer or a Uint8Array', guestMemory);
  }
  if (isInstanceOf<Uint8Array>(guestMemory, Uint8Array) && !isShared(guestMemory.buffer) && !onThisThread) {
    throw Errors.InvalidOption(
      'guestMemory',
      "a SharedArrayBuffer or a view of one (workers cannot reach a non-shared buffer: use dataPlane 'main-thread')",
      guestMemory.buffer,
    );
  }
  if (onThisThread && options.workers !== undefined && options.workers !== 0) {
    throw Errors.InvalidOption('workers', "0 or absent with dataPlane 'main-thread' (device models run on the platform's thread)", options.workers);
  }
  if (options.onDeviceWrite !== undefined && typeof options.onDeviceWrite !== 'function')
    throw Errors.InvalidOption('onDeviceWrite', 'a function', options.onDeviceWrite);
  if (options.onDeviceWrite !== undefined && !onThisThread) {
    throw Errors.InvalidOption('onDeviceWrite', "absent with dataPlane 'workers' (devices write guest RAM from worker threads)", options.onDeviceWrite);
  }
  const dmaGuardPolicy = policyOption('dmaGuardPolicy', options.dmaGuardPolicy, 1);
  for (const name of ['onCallbackError', 'onDeviceError'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw Errors.InvalidOption(name, 'a function', options[name]);
  }
  const deviceModels = options.deviceModels ?? [];
  if (!Array.isArray(deviceModels)) throw Errors.InvalidOption('deviceModels', 'an array of module URLs', deviceModels);
  const modelUrls = deviceModels.map((url, i) => absoluteUrl(`deviceModels[${i}]`, url).href);
  return {
    deviceModels: modelUrls,
    workerUrl: (options.workerUrl === undefined ? defaultDmaWorkerUrl() : absoluteUrl('workerUrl', options.workerUrl)).href,
    memoryBytes: options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    guestMemory,
    dataPlane,
    onDeviceWrite: options.onDeviceWrite ?? null,
    arch,
    policy: {
      kernelDmaProtection: policyOption('kernelDmaProtection', options.kernelDmaProtection, true),
      dmaGuardPolicy,
      userUnlocked: policyOption('userUnlocked', options.userUnlocked, true),
    },
    // The default follows the machine, within the range an explicit value must keep to.
    workers: onThisThread ? 0 : integer('workers', options.workers, Math.min(Math.max(hardwareConcurrency(), 1), MAX_WORKERS), 0, MAX_WORKERS),
    faultReportingEx,
    maxDomains: integer('maxDomains', options.maxDomains, 1024, 1, 65536),
    maxFunctions: integer('maxFunctions', options.maxFunctions, 256, 1, 65536),
    deviceMemoryBytes: integer('deviceMemoryBytes', options.deviceMemoryBytes, 256 * 1024 * 1024, 0, 2 ** 40),
    pageTableBytes: integer('pageTableBytes', options.pageTableBytes, 64 * 1024 * 1024, 8 * 2048, 2 ** 32),
    iotlbEntries: powerOfTwo('iotlbEntries', options.iotlbEntries, 4096, 16, 2 ** 22),
    iotlbWays: integer('iotlbWays', options.iotlbWays, 4, 1, 16),
    faultRingCapacity: powerOfTwo('faultRingCapacity', options.faultRingCapacity, 4096, 2, 2 ** 24),
    invalidationLogCapacity: powerOfTwo('invalidationLogCapacity', options.invalidationLogCapacity, 4096, 2, 2 ** 24),
    inputMappingBase: integer('inputMappingBase', options.inputMappingBase, 0, 0, 0xffff0000),
    iommuBaseAddress: integer('iommuBaseAddress', options.iommuBaseAddress, 0x2b400000, 0, Number.MAX_SAFE_INTEGER),
    onCallbackError: options.onCallbackError ?? ((error: unknown) => warn(error instanceof Error ? error : String(error), 'ViommuCallbackError')),
    onDeviceError:
      options.onDeviceError ??
      ((fn: PciFunction, error: unknown) =>
        warn(`device ${fn.bdf} (${fn.model}): ${error instanceof Error ? error.message : String(error)}`, 'ViommuDeviceError')),
  };
}

/** A field of the DMA-protection policy given as an option (checked as setPolicy and restore check it). */
function policyOption<Key extends keyof DmaProtectionPolicy>(key: Key, value: unknown, fallback: DmaProtectionPolicy[Key]): DmaProtectionPolicy[Key] {
  if (value === undefined) return fallback;
  const problem = policyFieldProblem(key, value);
  if (problem !== null) throw Errors.InvalidOption(key, problem, value);
  return value as DmaProtectionPolicy[Key];
}

function integer(path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw Errors.InvalidOption(path, 'an integer', value);
  if (value < min || value > max) throw Errors.OptionOutOfRange(path, `between ${min} and ${max}`, value);
  return value;
}

function powerOfTwo(path: string, value: unknown, fallback: number, min: number, max: number): number {
  const n = integer(path, value, fallback, min, max);
  if (!Number.isInteger(Math.log2(n))) throw Errors.OptionOutOfRange(path, 'a power of two', n);
  return n;
}

/** An absolute URL, from a URL (or anything with an href) or a string (relative paths are refused: relative to what?). */
function absoluteUrl(path: string, value: unknown): URL {
  if (isInstanceOf(value, URL)) return value;
  let href: unknown;
  try {
    href = typeof value === 'object' && value !== null ? (value as { href?: unknown }).href : value;
  } catch {
    href = undefined; // a Proxy whose traps throw
  }
  if (typeof href !== 'string') throw Errors.InvalidOption(path, 'a URL or a URL string', value);
  try {
    return new URL(href);
  } catch {
    throw Errors.InvalidOption(path, 'an absolute URL (for example new URL("./model.js", import.meta.url))', value);
  }
}
