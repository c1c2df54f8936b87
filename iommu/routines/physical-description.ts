import type { PhysicalMemory } from '../../hardware/substrate.js';
import { MapPhysicalAddressTypeContiguousRange, MapPhysicalAddressTypeMax, MapPhysicalAddressTypeMdl } from '../../base/enums.js';
import { isAddress, PAGE_SIZE } from '../../base/numbers.js';
import type { PhysicalRuns } from '../control/routine-scratch.js';
import type { IOMMU_MAP_PHYSICAL_ADDRESS } from '../types.js';
import { isEnumBelow } from './parameters.js';

/**
 * Parses a physical description into `runs` (the routine's scratch, IommuCore.scratch.runs)
 * and returns them, or returns null when the description is malformed: unknown MapType,
 * missing fields, a start off a page boundary, a length that is not whole pages (an MDL's
 * ByteOffset must be 0 and its ByteCount a page multiple), or any page outside guest memory.
 */
export function parsePhysicalDescription(description: unknown, memory: PhysicalMemory, runs: PhysicalRuns): PhysicalRuns | null {
  if (typeof description !== 'object' || description === null) return null;
  const d = description as IOMMU_MAP_PHYSICAL_ADDRESS;
  if (!isEnumBelow(d.MapType, MapPhysicalAddressTypeMax)) return null;
  runs.count = 0;
  runs.pages = 0;
  if (d.MapType === MapPhysicalAddressTypeContiguousRange) {
    const range = d.ContiguousRange;
    if (typeof range !== 'object' || range === null || !isAddress(range.Base) || !isAddress(range.Size)) return null;
    if (range.Base % PAGE_SIZE !== 0 || range.Size === 0 || range.Size % PAGE_SIZE !== 0) return null;
    if (range.Base + range.Size > memory.size) return null;
    addRun(runs, range.Base / PAGE_SIZE, range.Size / PAGE_SIZE);
    return runs;
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
  const pageCount = memory.pageCount;
  for (let i = 0; i < count; i++) {
    const frame = frames[i];
    if (!isAddress(frame) || frame >= pageCount) return null;
    const last = runs.count - 1;
    if (last >= 0 && runs.firstFrames[last]! + runs.counts[last]! === frame) runs.counts[last]!++;
    else addRun(runs, frame, 1);
  }
  runs.pages = count;
  return runs;
}

function addRun(runs: PhysicalRuns, first: number, pages: number): void {
  if (runs.count === runs.firstFrames.length) {
    // Grows only for descriptions with more runs than ever before.
    const firstFrames = new Float64Array(runs.count * 2);
    const counts = new Float64Array(runs.count * 2);
    firstFrames.set(runs.firstFrames);
    counts.set(runs.counts);
    runs.firstFrames = firstFrames;
    runs.counts = counts;
  }
  runs.firstFrames[runs.count] = first;
  runs.counts[runs.count] = pages;
  runs.count++;
  runs.pages += pages;
}
