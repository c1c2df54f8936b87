import type { DMA_IOMMU_INTERFACE_V2 } from '../../machine/index.js';

/**
 * The V2 table as a JavaScript caller sees it: any argument of any type. Every routine still
 * answers with its status (QueryAvailableDomainTypes with nothing). For the tests that pass
 * what the TypeScript signatures refuse, to pin what the routines do with it at run time.
 */
export type UntypedV2 = { readonly [Name in keyof DMA_IOMMU_INTERFACE_V2]: (...args: unknown[]) => ReturnType<DMA_IOMMU_INTERFACE_V2[Name]> };

export function untyped(V2: DMA_IOMMU_INTERFACE_V2): UntypedV2 {
  return V2 as UntypedV2;
}
