import { DomainTypePassThrough, DomainTypeTranslate, DomainTypeUnmanaged } from '../../base/enums.js';
import { kContextBehindIommu, kContextBusMaster, kContextPresent } from '../shared-memory/device-context-table.js';

/**
 * What a device context says about a device's DMA, decoded once and cached by the
 * translation engine (a context cache, as on VT-d) until the next invalidation.
 */
export const MODE_BLOCKED = 0;
/** Not behind the IOMMU: DMA reaches guest memory untranslated. */
export const MODE_UNTRANSLATED = 1;
/** Behind the IOMMU but in no domain: every access is an UnsupportedUpstreamTransaction. */
export const MODE_NO_DOMAIN = 2;
export const MODE_TRANSLATE = 3;
export const MODE_PASS_THROUGH = 4;
export const MODE_UNMANAGED = 5;
/** The domain went away under a DMA that had already read the device context. */
const MODE_GONE = 6;

/** The mode of a device whose context has `flags` and `domain` (-1: none), the domain being of `domainType`. */
export function contextModeOf(flags: number, domain: number, domainType: number): number {
  if ((flags & (kContextPresent | kContextBusMaster)) !== (kContextPresent | kContextBusMaster)) return MODE_BLOCKED;
  if ((flags & kContextBehindIommu) === 0) return MODE_UNTRANSLATED;
  if (domain < 0) return MODE_NO_DOMAIN;
  if (domainType === DomainTypeTranslate) return MODE_TRANSLATE;
  if (domainType === DomainTypePassThrough) return MODE_PASS_THROUGH;
  if (domainType === DomainTypeUnmanaged) return MODE_UNMANAGED;
  return MODE_GONE;
}
