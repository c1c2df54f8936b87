import type { GuestMemory } from '../../devices/guest-memory.js';
import {
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMax,
  MapPhysicalAddressTypeMdl,
} from '../enums.js';
import { isAddress, PAGE_SIZE } from '../numbers.js';
import type { IOMMU_MAP_PHYSICAL_ADDRESS } from '../types.js';
import { isEnumBelow } from './parameters.js';

/**
 * The pages an IOMMU_MAP_PHYSICAL_ADDRESS describes, as runs of physically contiguous page
 * frames: run i covers frames [firstFrames[i], firstFrames[i] + counts[i]).
 */
export interface PhysicalRuns {
  readonly firstFrames: number[];
  readonly counts: number[];
  pages: number;
}

/**
 * Parses a physical description, or returns null when it is malformed: unknown MapType,
 * missing fields, a start off a page boundary, a length that is not whole pages (an MDL's
 * ByteOffset must be 0 and its ByteCount a page multiple), or any page outside guest memory.
 */
export function parsePhysicalDescription(description: unknown, memory: GuestMemory): PhysicalRuns | null {
  if (typeof description !== 'object' || description === null) return null;
  const d = description as IOMMU_MAP_PHYSICAL_ADDRESS;
  if (!isEnumBelow(d.MapType, MapPhysicalAddressTypeMax)) return null;
  const runs: PhysicalRuns = { firstFrames: [], counts: [], pages: 0 };
  if (d.MapType === MapPhysicalAddressTypeContiguousRange) {
    const range = d.ContiguousRange;
    if (typeof range !== 'object' || range === null || !isAddress(range.Base) || !isAddress(range.Size)) return null;
    if (range.Base % PAGE_SIZE !== 0 || range.Size === 0 || range.Size % PAGE_SIZE !== 0) return null;
    if (range.Base + range.Size > memory.size) return null;
    return addRun(runs, range.Base / PAGE_SIZE, range.Size / PAGE_SIZE);
  }
  let frames: readonly unknown[];
  let count: number;
  if (d.MapType === MapPhysicalAddressTypeMdl) {
    const mdl = d.Mdl?.Mdl;
    if (typeof mdl !== 'object' || mdl === null || !Array.isArray(mdl.Pfns)) return null;
    if (mdl.ByteOffset !== 0 || !isAddress(mdl.ByteCount) || mdl.ByteCount === 0 || mdl.ByteCount % PAGE_SIZE !== 0) return null;
    count = mdl.ByteCount / PAGE_SIZE;
    if (mdl.Pfns.length !== count) return null;
    frames = mdl.Pfns;
  } else {
    const array = d.PfnArray;
    if (typeof array !== 'object' || array === null || !Array.isArray(array.PageFrame)) return null;
    if (!isAddress(array.NumberOfPages) || array.NumberOfPages === 0 || array.NumberOfPages > array.PageFrame.length) return null;
    count = array.NumberOfPages;
    frames = array.PageFrame;
  }
  for (let i = 0; i < count; i++) {
    const frame = frames[i];
    if (!isAddress(frame) || frame >= memory.pageCount) return null;
    const last = runs.firstFrames.length - 1;
    if (last >= 0 && runs.firstFrames[last]! + runs.counts[last]! === frame) runs.counts[last]!++;
    else {
      runs.firstFrames.push(frame);
      runs.counts.push(1);
    }
  }
  runs.pages = count;
  return runs;
}

function addRun(runs: PhysicalRuns, first: number, count: number): PhysicalRuns {
  runs.firstFrames.push(first);
  runs.counts.push(count);
  runs.pages += count;
  return runs;
}
