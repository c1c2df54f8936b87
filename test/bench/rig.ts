import {
  createPlatform,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypePfn,
  STATUS_SUCCESS,
  describeStatus,
  type DMA_IOMMU_INTERFACE_V2,
  type DMA_IOMMU_INTERFACE_EX,
  type Out,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type Platform,
  type PciFunction,
} from 'viommu';

/** What the benchmark's scenarios share: a platform with one device in a Translate domain, page mappings, small statistics. */

export const PAGE = 4096;
/** The worker side, next to this file: .ts from the sources, .js in the bench bundle. */
export const workloads = new URL(`./workloads.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);
export const RW = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE;

export function check(status: number, what: string): void {
  if (status !== STATUS_SUCCESS) throw new Error(`${what}: ${describeStatus(status)}`);
}

export interface Rig {
  platform: Platform;
  V2: DMA_IOMMU_INTERFACE_V2;
  fn: PciFunction;
  device: IOMMU_DMA_DEVICE;
  domain: IOMMU_DMA_DOMAIN;
}

/** A platform with one device attached to a Translate domain without allocator (explicit addresses). */
export async function rig(
  workers: number,
  memoryBytes = 256 * 1024 * 1024,
  allocator: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | null = null,
  deviceNumber = 1,
  existing?: Platform,
): Promise<Rig> {
  const platform = existing ?? (await createPlatform({ workers, memoryBytes }));
  const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
  check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
  const V2 = table.value!.V2;
  const fn = platform.bus.addFunction({ bus: 0, device: deviceNumber, function: 0 });
  const device: { value?: IOMMU_DMA_DEVICE } = {};
  const domain: { value?: IOMMU_DMA_DOMAIN } = {};
  check(V2.CreateDevice(fn, null, device), 'CreateDevice');
  check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, allocator, null, domain), 'CreateDomainEx');
  check(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  return { platform, V2, fn, device: device.value!, domain: domain.value! };
}

/** Maps each of `pfns` with its own 4 KiB mapping at consecutive logical pages from `iova`. */
export function mapPages(r: Rig, iova: number, pfns: readonly number[]): void {
  const out: { value?: number } = {};
  pfns.forEach((pfn, i) => {
    const description = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [pfn], NumberOfPages: 1 } };
    check(r.V2.MapLogicalRangeEx(r.domain, RW, description, iova + i * PAGE, null, null, out), 'MapLogicalRangeEx');
  });
}

export function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function sd(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length);
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
