import type { IommuCore } from '../control/iommu-core.js';
import { DomainConfigurationArm64, DomainConfigurationInvalid, DomainTypeUnmanaged } from '../../base/enums.js';
import { STATUS_INVALID_PARAMETER_1, STATUS_INVALID_PARAMETER_2, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, type NTSTATUS } from '../../base/ntstatus.js';
import { isAddress, PAGE_SIZE, TWO_32 } from '../../base/numbers.js';
import {
  kArmConfigured,
  kArmTranslationEnabled,
  kDomainArmFlagsField,
  kDomainInputSizeField,
  kDomainTtbr0HighField,
  kDomainTtbr0LowField,
} from '../shared-memory/domain-table.js';
import type { DOMAIN_CONFIGURATION } from '../types.js';
import { isBoolean, isEnumBelow } from './parameters.js';

/**
 * IOMMU_DOMAIN_CONFIGURE: installs the guest's own ARM64 stage-1 tables in an unmanaged
 * domain. Until configured, every access faults (TranslationFault). Reconfiguring is allowed
 * and drops every cached translation of the domain. TranslationEnabled false: accesses
 * bypass translation (identity). DomainConfigurationX64 is reserved for the system.
 */
export function ConfigureDomain(core: IommuCore, Domain: unknown, Configuration: unknown): NTSTATUS {
  const domain = core.domains.get(Domain);
  if (domain === undefined || domain.type !== DomainTypeUnmanaged) return STATUS_INVALID_PARAMETER_1;
  if (typeof Configuration !== 'object' || Configuration === null) return STATUS_INVALID_PARAMETER_2;
  const configuration = Configuration as Partial<DOMAIN_CONFIGURATION>;
  if (!isEnumBelow(configuration.Type, DomainConfigurationInvalid)) return STATUS_INVALID_PARAMETER_2;
  if (configuration.Type !== DomainConfigurationArm64) return STATUS_NOT_SUPPORTED;
  const arm = configuration.Arm64;
  if (typeof arm !== 'object' || arm === null) return STATUS_INVALID_PARAMETER_2;
  if (!isAddress(arm.Ttbr0) || arm.Ttbr0 % PAGE_SIZE !== 0 || arm.Ttbr0 + PAGE_SIZE > core.memory.size) return STATUS_INVALID_PARAMETER_2;
  if (!Number.isInteger(arm.InputSize0) || arm.InputSize0 < 25 || arm.InputSize0 > 48) return STATUS_INVALID_PARAMETER_2;
  if (!isBoolean(arm.TranslationEnabled)) return STATUS_INVALID_PARAMETER_2;

  const fields = core.shared.domains;
  // Writers bracket the change with generation bumps (a seqlock): a walker that sees an odd
  // generation, or a different one after reading, retries; so it never uses a torn mix of
  // old and new configuration. The second bump also retires every cached translation.
  core.beginDomainUpdate(domain);
  fields.set(domain.slot, kDomainTtbr0LowField, arm.Ttbr0 % TWO_32);
  fields.set(domain.slot, kDomainTtbr0HighField, Math.floor(arm.Ttbr0 / TWO_32));
  fields.set(domain.slot, kDomainInputSizeField, arm.InputSize0);
  fields.set(domain.slot, kDomainArmFlagsField, kArmConfigured | (arm.TranslationEnabled ? kArmTranslationEnabled : 0));
  core.endDomainUpdate(domain);
  return STATUS_SUCCESS;
}
