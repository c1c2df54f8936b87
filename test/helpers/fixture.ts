import type { Test } from 'tap';
import {
  createPlatform,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  STATUS_SUCCESS,
  describeStatus,
  type DMA_IOMMU_INTERFACE_EX,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_DOMAIN_TYPE,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type IOMMU_DMA_RESERVED_REGION,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type NTSTATUS,
  type Opt,
  type Out,
  type Platform,
  type PlatformOptions,
  type PciFunction,
} from '../../machine/index.js';

/** Shared test scaffolding: platforms that close themselves, handles, physical descriptions, a seeded PRNG. */

export const ZERO_FLAGS = Object.freeze({ AsUlonglong: 0 });
export const PAGE = 4096;

export function out<T>(): Out<T> {
  return {};
}

/** A platform closed when the test ends. Control-plane tests pass workers: 0. */
export async function platformFor(t: Test, options: PlatformOptions = {}): Promise<Platform> {
  const platform = await createPlatform({ workers: 0, memoryBytes: 16 * 1024 * 1024, ...options });
  t.teardown(() => platform.close());
  return platform;
}

export function v2Of(platform: Platform): DMA_IOMMU_INTERFACE_V2 {
  const table = out<DMA_IOMMU_INTERFACE_EX>();
  const status = platform.IoGetIommuInterfaceEx(2, 0, table);
  if (status !== STATUS_SUCCESS) throw new Error(`IoGetIommuInterfaceEx: ${describeStatus(status)}`);
  return table.value!.V2;
}

export function buddy(addressWidth = 48): IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
  return { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: addressWidth } };
}

export function contiguous(base: number, size: number): IOMMU_MAP_PHYSICAL_ADDRESS {
  return { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: base, Size: size } };
}

export function pfnArray(pfns: readonly number[]): IOMMU_MAP_PHYSICAL_ADDRESS {
  return { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: pfns.length } };
}

export function mdlOf(platform: Platform, pfns: readonly number[]): IOMMU_MAP_PHYSICAL_ADDRESS {
  return { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } };
}

export const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;

/** A fresh domain of `type` (setup: throws unless CreateDomainEx succeeds). */
export function domainOf(
  V2: DMA_IOMMU_INTERFACE_V2,
  type: IOMMU_DMA_DOMAIN_TYPE,
  allocator: Opt<IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG> = null,
  regions: Opt<IOMMU_DMA_RESERVED_REGION> = null,
): IOMMU_DMA_DOMAIN {
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(type, ZERO_FLAGS, allocator, regions, domain), 'CreateDomainEx');
  return domain.value!;
}

/**
 * What a rejected call must leave alone in `domain`: its summary, the translations at
 * `probes` and the page-table pool. Returns a check that they are unchanged.
 */
export function watch(platform: Platform, domain: IOMMU_DMA_DOMAIN, probes: number[]) {
  const snap = () => ({
    tables: platform.pageTablesInUse,
    domain: platform.describeDomain(domain),
    translations: probes.map((a) => platform.inspectTranslation(domain, a)),
  });
  const before = snap();
  return (t: Test, what: string) => t.strictSame(snap(), before, `${what}: nothing changed`);
}

/** [physical address, access] that `domain` translates `address` to, or the fault view. */
export function translatesTo(platform: Platform, domain: IOMMU_DMA_DOMAIN, address: number) {
  const view = platform.inspectTranslation(domain, address);
  return view && 'physicalAddress' in view ? [view.physicalAddress, view.access] : view;
}

/** Throws unless `status` is STATUS_SUCCESS (for setup steps, not for the behaviour under test). */
export function ok(status: NTSTATUS, what: string): void {
  if (status !== STATUS_SUCCESS) throw new Error(`${what}: ${describeStatus(status)}`);
}

export interface DeviceInDomain {
  fn: PciFunction;
  device: IOMMU_DMA_DEVICE;
  domain: IOMMU_DMA_DOMAIN;
}

/** A PCI function with a DMA device attached to a fresh Translate domain (buddy allocator unless `allocator` is null). */
export function deviceInTranslateDomain(
  platform: Platform,
  V2: DMA_IOMMU_INTERFACE_V2,
  bdf: { bus?: number; device: number; function?: number },
  allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null = buddy(),
): DeviceInDomain {
  const fn = platform.bus.addFunction({ bus: bdf.bus ?? 0, device: bdf.device, function: bdf.function ?? 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, allocator, null, domain), 'CreateDomainEx');
  ok(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  return { fn, device: device.value!, domain: domain.value! };
}

/** mulberry32, the examples' seeded PRNG, so every random test replays exactly. */
export { seededRandom as rng } from '../../examples/traffic/device-stats.js';

/** Fisher–Yates, in place: every order equally likely (a random sort comparator is biased). */
export function shuffle<T>(random: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function randomBytes(random: () => number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}
