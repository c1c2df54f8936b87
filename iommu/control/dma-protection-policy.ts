import { DomainTypePassThrough, DomainTypeTranslate, DomainTypeUnmanaged } from '../../base/enums.js';

/**
 * Kernel DMA Protection and DMA Guard, reduced to the inputs the contract names, and the
 * domain types they leave a device (QueryAvailableDomainTypes, AttachDeviceEx).
 */
export interface DmaProtectionPolicy {
  /** Kernel DMA Protection (default true). */
  kernelDmaProtection: boolean;
  /** DMA Guard enumeration policy: 0 block all, 1 after unlock (default), 2 allow all. */
  dmaGuardPolicy: 0 | 1 | 2;
  /** Whether a user has logged in / unlocked since boot (default true). */
  userUnlocked: boolean;
}

export type Architecture = 'arm64' | 'x64';

/**
 * The one check of a policy's fields, behind the platform's options, Platform.setPolicy and
 * the restore of a snapshot, which each word the error their own way: null when `value` is a
 * valid value of field `key`, else what it must be ('0, 1 or 2', 'a boolean', or, for a key
 * that is no field of the policy, which keys there are).
 */
export function policyFieldProblem(key: string, value: unknown): string | null {
  switch (key) {
    case 'dmaGuardPolicy':
      return value === 0 || value === 1 || value === 2 ? null : '0, 1 or 2';
    case 'userUnlocked':
    case 'kernelDmaProtection':
      return typeof value === 'boolean' ? null : 'a boolean';
    default:
      return 'one of dmaGuardPolicy, userUnlocked, kernelDmaProtection';
  }
}

/**
 * The mask of domain types (bit 1 << DomainType) a device may attach to:
 * Translate always; Unmanaged on arm64 only; TranslateS1 never; PassThrough when Kernel DMA
 * Protection is off or the port is internal, else by DMA Guard: 2 yes, 1 once unlocked, 0 no.
 */
export function availableDomainTypes(arch: Architecture, policy: DmaProtectionPolicy, externalFacing: boolean): number {
  let mask = 1 << DomainTypeTranslate;
  if (arch === 'arm64') mask |= 1 << DomainTypeUnmanaged;
  const passThrough = !policy.kernelDmaProtection || !externalFacing || policy.dmaGuardPolicy === 2 || (policy.dmaGuardPolicy === 1 && policy.userUnlocked);
  if (passThrough) mask |= 1 << DomainTypePassThrough;
  return mask;
}
