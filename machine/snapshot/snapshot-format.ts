import { isInstanceOf } from '../../base/values.js';
import { pack, unpack } from 'msgpackr';
import { Errors } from '../../base/errors.js';
import { PAGE_SIZE } from '../../base/numbers.js';

/**
 * The saved state of a whole platform (Platform.saveState, restorePlatform): one MessagePack
 * document (msgpackr) holding the plain object below. Version 1.
 *
 *   format, version   'viommu-snapshot', 1: anything else is refused
 *   options           the platform options that shape the machine (sizes, arch, models)
 *   memory            guest RAM as a sparse page image (all-zero pages left out), or null
 *                     when the caller keeps guest RAM itself (saveState({ guestMemory: false }))
 *   allocation        the guest page allocator: allocated frames as [first, count] runs, cursor
 *   functions         the PCI bus in slot order: identity, config space, register file,
 *                     device-private memory (sparse), wired peer, doorbell pending
 *   iommu             the policy, the last ids issued, every live domain (allocator state,
 *                     logical-space extents, mappings read back from the page tables, tokens,
 *                     ARM64 configuration) and every DMA device (function, attached domain)
 *
 * Flat number arrays hold repeated tuples (documented per field) so that large mapping sets
 * stay compact. What a snapshot cannot hold: functions (fault handlers, state-change
 * callbacks, interrupt handlers), which the caller registers again on the restored platform,
 * and caches (IOTLBs, fault counters), which start empty.
 */
export const SNAPSHOT_FORMAT = 'viommu-snapshot';
export const SNAPSHOT_VERSION = 1;

/** Pages of a memory as [firstPage, count] runs (flat) and their bytes back to back. */
export interface MemoryImage {
  bytes: number;
  runs: number[];
  data: Uint8Array;
}

interface SavedOptions {
  memoryBytes: number;
  arch: 'arm64' | 'x64';
  workers: number;
  faultReportingEx: 'implemented' | 'windows';
  maxDomains: number;
  maxFunctions: number;
  deviceMemoryBytes: number;
  pageTableBytes: number;
  iotlbEntries: number;
  iotlbWays: number;
  faultRingCapacity: number;
  invalidationLogCapacity: number;
  inputMappingBase: number;
  iommuBaseAddress: number;
  deviceModels: string[];
}

export interface SavedFunction {
  bus: number;
  device: number;
  function: number;
  model: string;
  modelOptions: Record<string, unknown>;
  externalFacing: boolean;
  behindIommu: boolean;
  /** BARs after the model's register BAR (what addFunction was given). */
  bars: Array<{ size: number; kind?: 'memory32' | 'memory64' | 'io'; prefetchable?: boolean }>;
  /** The 256-byte configuration space as the guest left it (command register, BAR addresses). */
  config: Uint8Array;
  registers: Uint8Array | null;
  privateMemory: MemoryImage | null;
  /** Slot of the wired peer, or -1. */
  peer: number;
  /** A doorbell rang that no batch has served yet: the restored platform runs the device. */
  pending: boolean;
}

export interface SavedToken {
  firstPage: number;
  pages: number;
  /** The buddy block behind the token, [firstPage, order], or null. */
  block: [number, number] | null;
  /** Mapped segments, flat [offsetPages, pages]. */
  segments: number[];
  /** What the segments map, flat [page, pages, pfn, access]. */
  mappings: number[];
}

interface SavedArm64Configuration {
  Ttbr0: number;
  InputSize0: number;
  TranslationEnabled: boolean;
}

export interface SavedDomain {
  id: number;
  type: number;
  addressBits: number;
  /** Buddy allocator state (BuddyAllocator.saveState), or null for a domain without one. */
  allocator: { stacks: number[][]; cache: number[][] } | null;
  /** Logical-space extents, flat [first, pages, kind, owner]: owner is the block order (-1 none) of a Logical extent, the access bits of an Identity one, the token index of a Token, 0 for a Hole. */
  extents: number[];
  /** What the Logical extents map, flat [page, pages, pfn, access]. */
  mappings: number[];
  tokens: SavedToken[];
  /** Unmanaged: the installed configuration, or null if never configured. */
  arm64: SavedArm64Configuration | null;
}

export interface SavedDevice {
  id: number;
  /** Slot of its PCI function (index into `functions`). */
  function: number;
  /** Id of the domain it is attached to, or -1. */
  domain: number;
  faultReporting: boolean;
  stateChangeCallback: boolean;
}

interface SavedIommu {
  policy: { kernelDmaProtection: boolean; dmaGuardPolicy: 0 | 1 | 2; userUnlocked: boolean };
  lastDomainSerial: number;
  lastHandleId: number;
  domains: SavedDomain[];
  devices: SavedDevice[];
}

export interface PlatformSnapshot {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  options: SavedOptions;
  memory: MemoryImage | null;
  allocation: { runs: number[]; cursor: number };
  functions: SavedFunction[];
  iommu: SavedIommu;
}

/**
 * The snapshot as a plain Uint8Array that owns its memory. msgpackr returns a Node Buffer cut
 * from its shared pool (a view whose buffer holds other data too, and the next pack()
 * overwrites): the copy is what the caller can keep, transfer or store as it is.
 */
export function encodeSnapshot(snapshot: PlatformSnapshot): Uint8Array {
  return new Uint8Array(pack(snapshot));
}

/** Parses a snapshot's outer shape; the restore checks each part as it uses it. */
export function decodeSnapshot(bytes: unknown): PlatformSnapshot {
  if (!isInstanceOf(bytes, Uint8Array)) throw Errors.InvalidArgument('snapshot', 'a Uint8Array from platform.saveState()', bytes);
  let value: unknown;
  try {
    value = unpack(bytes);
  } catch (error) {
    throw Errors.InvalidSnapshot(`not a MessagePack document (${error instanceof Error ? error.message : String(error)})`);
  }
  const snapshot = record(value, 'the document');
  if (snapshot.format !== SNAPSHOT_FORMAT) throw Errors.InvalidSnapshot(`format is ${JSON.stringify(snapshot.format)}, not '${SNAPSHOT_FORMAT}'`);
  if (snapshot.version !== SNAPSHOT_VERSION)
    throw Errors.InvalidSnapshot(`version ${String(snapshot.version)} is not supported (this viommu reads version ${SNAPSHOT_VERSION})`);
  record(snapshot.options, 'options');
  if (snapshot.memory !== null) memoryImage(snapshot.memory, 'memory');
  record(snapshot.allocation, 'allocation');
  list(snapshot.functions, 'functions');
  const iommu = record(snapshot.iommu, 'iommu');
  list(iommu.domains, 'iommu.domains');
  list(iommu.devices, 'iommu.devices');
  return snapshot as unknown as PlatformSnapshot;
}

/** `value` as a plain object, or an InvalidSnapshot error naming `what`. */
export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw Errors.InvalidSnapshot(`${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

export function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw Errors.InvalidSnapshot(`${what} is not an array`);
  return value;
}

/** A flat array of safe integers whose length is a multiple of `tuple`. */
export function tuples(value: unknown, tuple: number, what: string): number[] {
  const values = list(value, what);
  if (values.length % tuple !== 0 || !values.every((n) => Number.isSafeInteger(n))) {
    throw Errors.InvalidSnapshot(`${what} is not a flat list of ${tuple}-integer tuples`);
  }
  return values as number[];
}

export function integerIn(value: unknown, min: number, max: number, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw Errors.InvalidSnapshot(`${what} is not an integer in ${min}..${max}`);
  }
  return value as number;
}

export function memoryImage(value: unknown, what: string): MemoryImage {
  const image = record(value, what);
  const bytes = integerIn(image.bytes, 0, 2 ** 42, `${what}.bytes`);
  const runs = tuples(image.runs, 2, `${what}.runs`);
  if (!(image.data instanceof Uint8Array)) throw Errors.InvalidSnapshot(`${what}.data is not bytes`);
  let pages = 0;
  for (let i = 0; i < runs.length; i += 2) {
    if (runs[i]! < 0 || runs[i + 1]! < 1 || (runs[i]! + runs[i + 1]!) * PAGE_SIZE > bytes)
      throw Errors.InvalidSnapshot(`${what}.runs reach outside ${bytes} bytes`);
    pages += runs[i + 1]!;
  }
  if (image.data.length !== pages * PAGE_SIZE)
    throw Errors.InvalidSnapshot(`${what}.data holds ${image.data.length} bytes, not the ${pages} pages its runs name`);
  return image as unknown as MemoryImage;
}
