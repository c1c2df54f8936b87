import { availableParallelism } from 'node:os';
import { DEFAULT_MEMORY_BYTES } from '../hardware/guest-memory.js';
import type { Architecture, DmaProtectionPolicy } from '../iommu/control/dma-protection-policy.js';
import { Errors } from '../base/errors.js';

export interface PlatformOptions {
  /** Guest RAM in bytes (default 64 MiB); ignored when `guestMemory` is given. */
  memoryBytes?: number;
  /** An emulator's own guest RAM, adopted as is. */
  guestMemory?: SharedArrayBuffer;
  /** 'arm64' (default) or 'x64'. */
  arch?: Architecture;
  kernelDmaProtection?: boolean;
  /** 0 block all, 1 after unlock (default), 2 allow all. */
  dmaGuardPolicy?: 0 | 1 | 2;
  userUnlocked?: boolean;
  /** DMA worker threads (default: the machine's available parallelism); 0 for a control plane without data plane. */
  workers?: number;
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
  deviceModels?: ReadonlyArray<string | URL>;
  /** Where errors thrown by FaultHandlers and state-change callbacks go (default: a process warning). */
  onCallbackError?: (error: unknown) => void;
}

export type ResolvedPlatformOptions = Required<Omit<PlatformOptions, 'guestMemory' | 'dmaGuardPolicy' | 'kernelDmaProtection' | 'userUnlocked' | 'deviceModels'>> & {
  deviceModels: string[];
  guestMemory: SharedArrayBuffer | undefined;
  policy: DmaProtectionPolicy;
};

/** Checks every option once, naming the option at fault, and fills in the defaults. */
export function resolvePlatformOptions(options: PlatformOptions = {}): ResolvedPlatformOptions {
  if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
  const arch = options.arch ?? 'arm64';
  if (arch !== 'arm64' && arch !== 'x64') throw Errors.InvalidOption('arch', "'arm64' or 'x64'", arch);
  const faultReportingEx = options.faultReportingEx ?? 'implemented';
  if (faultReportingEx !== 'implemented' && faultReportingEx !== 'windows') {
    throw Errors.InvalidOption('faultReportingEx', "'implemented' or 'windows'", faultReportingEx);
  }
  if (options.guestMemory !== undefined && !(options.guestMemory instanceof SharedArrayBuffer)) {
    throw Errors.InvalidOption('guestMemory', 'a SharedArrayBuffer', options.guestMemory);
  }
  const dmaGuardPolicy = options.dmaGuardPolicy ?? 1;
  if (dmaGuardPolicy !== 0 && dmaGuardPolicy !== 1 && dmaGuardPolicy !== 2) throw Errors.InvalidOption('dmaGuardPolicy', '0, 1 or 2', dmaGuardPolicy);
  if (options.onCallbackError !== undefined && typeof options.onCallbackError !== 'function') {
    throw Errors.InvalidOption('onCallbackError', 'a function', options.onCallbackError);
  }
  const deviceModels = options.deviceModels ?? [];
  if (!Array.isArray(deviceModels)) throw Errors.InvalidOption('deviceModels', 'an array of module URLs', deviceModels);
  const modelUrls = deviceModels.map((url, i) => {
    if (url instanceof URL) return url.href;
    if (typeof url !== 'string') throw Errors.InvalidOption(`deviceModels[${i}]`, 'a URL or a URL string', url);
    try {
      return new URL(url).href;
    } catch {
      throw Errors.InvalidOption(`deviceModels[${i}]`, 'an absolute URL (for example new URL("./model.js", import.meta.url))', url);
    }
  });
  return {
    deviceModels: modelUrls,
    memoryBytes: options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    guestMemory: options.guestMemory,
    arch,
    policy: {
      kernelDmaProtection: boolean('kernelDmaProtection', options.kernelDmaProtection, true),
      dmaGuardPolicy,
      userUnlocked: boolean('userUnlocked', options.userUnlocked, true),
    },
    workers: integer('workers', options.workers, availableParallelism(), 0, 64),
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
    onCallbackError: options.onCallbackError ?? ((error: unknown) => process.emitWarning(error instanceof Error ? error : String(error), 'ViommuCallbackError')),
  };
}

function boolean(path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw Errors.InvalidOption(path, 'a boolean', value);
  return value;
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
