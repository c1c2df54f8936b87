import { createHash } from 'node:crypto';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypePfn,
  STATUS_SUCCESS,
  describeStatus,
  type DMA_IOMMU_INTERFACE_EX,
  type DMA_IOMMU_INTERFACE_V2,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Out,
  type PciFunction,
  type Platform,
} from 'viommu';
import { fillRandom } from '../traffic/device-stats.js';

const PAGE = 4096;
const BASE = 0x7000_0000;
const PAGES = 16;

function check(status: number, what: string): void {
  if (status !== STATUS_SUCCESS) throw new Error(`witness: ${what}: ${describeStatus(status)}`);
}

function v2(platform: Platform): DMA_IOMMU_INTERFACE_V2 {
  const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
  check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
  return table.value!.V2;
}

/**
 * What the soak checks across its save and restore, besides the traffic: a device of its own
 * with a Translate domain of 16 mapped pages of random bytes and a reserved range, which must
 * come back with the same translations and the same bytes; and digests of all guest RAM and
 * every function's device-private memory.
 */
export interface Witness {
  fn: PciFunction;
  domain: IOMMU_DMA_DOMAIN;
}

/** Adds the witness device (bus 9) and its mappings. */
export function createWitness(platform: Platform, random: () => number): Witness {
  const V2 = v2(platform);
  const fn = platform.bus.addFunction({ bus: 9, device: 0, function: 0 });
  const device: Out<IOMMU_DMA_DEVICE> = {};
  const domain: Out<IOMMU_DMA_DOMAIN> = {};
  check(V2.CreateDevice(fn, null, device), 'CreateDevice');
  check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, null, null, domain), 'CreateDomainEx');
  check(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  const pfns = platform.memory.allocatePages(PAGES);
  const bytes = new Uint8Array(PAGE);
  pfns.forEach((pfn, i) => {
    fillRandom(random, bytes);
    platform.memory.write(pfn * PAGE, bytes);
    const description = { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: [pfn], NumberOfPages: 1 } };
    check(
      V2.MapLogicalRangeEx(
        domain.value!,
        i % 2 === 0 ? IOMMU_ACCESS_READ : IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE,
        description,
        BASE + i * PAGE,
        null,
        null,
        {},
      ),
      'MapLogicalRangeEx',
    );
  });
  check(V2.ReserveLogicalAddressRange(domain.value!, 8 * PAGE, BASE + 64 * PAGE, null, null, {}), 'ReserveLogicalAddressRange');
  return { fn, domain: domain.value! };
}

/** The witness's view of the machine: translations, bytes through DMA, and digests of all memory. */
export async function witnessState(platform: Platform, witness: Witness): Promise<string> {
  const translations = Array.from({ length: PAGES + 8 }, (_, i) => platform.inspectTranslation(witness.domain, BASE + i * PAGE + 16));
  const reads = [];
  for (let i = 0; i < PAGES; i++) {
    const result = await platform.dma(witness.fn, { address: BASE + i * PAGE, length: 64 });
    reads.push(result.ok ? Buffer.from(result.data!).toString('hex') : `fault ${result.faultType}`);
  }
  const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
  return JSON.stringify({
    translations,
    reads,
    ram: digest(platform.memory.bytes),
    devices: platform.bus.functions().map((fn) => digest(platform.bus.privateMemoryOf(fn))),
    domain: platform.describeDomain(witness.domain),
  });
}

/** The witness on a restored platform (same function, same domain id). */
export function rebindWitness(platform: Platform, domains: Map<number, IOMMU_DMA_DOMAIN>, old: Witness): Witness {
  const fn = platform.bus.find(9, 0, 0);
  const domain = domains.get((old.domain as { id: number }).id);
  if (fn === undefined || domain === undefined) throw new Error('witness: the restored platform lost the witness device or its domain');
  return { fn, domain };
}
