import type { IommuCore } from '../control/iommu-core.js';
import { DomainTypePassThrough, DomainTypeUnmanaged } from '../../base/enums.js';
import {
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_SUCCESS,
  type NTSTATUS,
} from '../../base/ntstatus.js';
import { isAddress, PAGE_SIZE } from '../../base/numbers.js';
import { isBoolean, isUlong } from './parameters.js';

/**
 * IOMMU_FLUSH_DOMAIN. Unmanaged: every cached translation of the domain dies (the driver
 * owns the tables, so this is how its changes become visible). Translate: nothing to do, its
 * unmaps already flush. PassThrough has no translations: STATUS_INVALID_PARAMETER_1.
 */
export function FlushDomain(core: IommuCore, Domain: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type === DomainTypePassThrough) return STATUS_INVALID_PARAMETER_1;
  if (domain.type === DomainTypeUnmanaged) core.invalidateDomain(domain);
  return STATUS_SUCCESS;
}

/**
 * IOMMU_FLUSH_DOMAIN_VA_LIST: invalidates the cached translations of the 4 KiB pages holding
 * each listed address (an array of `Number` logical addresses). A cached 2 MiB or 1 GiB leaf
 * holding one of them goes whole. Other cached translations stay. LastLevel is accepted;
 * this IOMMU caches leaves only, so it changes nothing.
 */
// biome-ignore lint/suspicious/noShadowRestrictedNames: Windows names the third parameter Number.
export function FlushDomainByVaList(core: IommuCore, Domain: unknown, LastLevel: unknown, Number: unknown, VaList: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type === DomainTypePassThrough) return STATUS_INVALID_PARAMETER_1;
  if (!isBoolean(LastLevel)) return STATUS_INVALID_PARAMETER_2;
  if (!isUlong(Number)) return STATUS_INVALID_PARAMETER_3;
  if (!Array.isArray(VaList)) return STATUS_INVALID_PARAMETER_4;
  if (VaList.length !== Number) return STATUS_INVALID_PARAMETER_3;
  if (!VaList.every(isAddress)) return STATUS_INVALID_PARAMETER_4;
  if (domain.type !== DomainTypeUnmanaged) return STATUS_SUCCESS;
  for (const address of VaList as number[]) core.invalidateRange(domain, Math.floor(address / PAGE_SIZE), 1);
  return STATUS_SUCCESS;
}
