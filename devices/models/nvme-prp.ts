import { DMA_OK, type DmaPort } from '../../iommu/data-plane/dma-port.js';
import { NVME as R } from './nvme-registers.js';

/**
 * Physical Region Page (PRP) handling of the 'nvme' model (NVMe 1.4, 4.3): turns PRP1/PRP2
 * of a command into the list of IOVA ranges its data occupies, then moves the data.
 *
 *   - data within one page: PRP1 only (PRP1 may have a dword-aligned offset);
 *   - data spanning two pages: PRP2 is the second page (offset 0);
 *   - more: PRP2 points to a PRP list of 8-byte page entries (offset 0 each); when the list
 *     needs more entries than its page holds, the page's last entry points to the next list page.
 *
 * Ranges that follow each other in IOVA space are merged, so a buffer the driver mapped at one
 * logical range moves with one translation per merged range. Scratch lives at module level:
 * a worker runs one device batch at a time, and nothing here outlives a command.
 */

/** PRP entries of a command at most: the MDTS limit plus the first, offset page. */
const MAX_SEGMENTS = (1 << R.MDTS) + 1;
/** (iova, length) pairs of the current command's data. */
const segments = new Float64Array(2 * MAX_SEGMENTS);
let segmentCount = 0;
/** Staging area of writes: data lands here and reaches the namespace only when all of it arrived. */
let staging = new Uint8Array(0);

/** What the last transfer ended with: DMA_OK, or the fault type (or DMA_BLOCKED) behind SC_DATA_TRANSFER_ERROR. */
export const transfer = { fault: DMA_OK };

function addSegment(iova: number, length: number): void {
  const last = 2 * (segmentCount - 1);
  if (segmentCount > 0 && segments[last]! + segments[last + 1]! === iova) {
    segments[last + 1] = segments[last + 1]! + length;
    return;
  }
  segments[2 * segmentCount] = iova;
  segments[2 * segmentCount + 1] = length;
  segmentCount++;
}

/**
 * Builds the ranges of `length` bytes (1 .. 2^MDTS pages) described by PRP1/PRP2. Returns
 * SC_SUCCESS, SC_INVALID_PRP_OFFSET, or SC_DATA_TRANSFER_ERROR when a PRP list page cannot be read.
 */
export function walkPrps(port: DmaPort, prp1: number, prp2: number, length: number): number {
  segmentCount = 0;
  transfer.fault = DMA_OK;
  if (prp1 % 4 !== 0) return R.SC_INVALID_PRP_OFFSET;
  const first = Math.min(length, R.PAGE - (prp1 % R.PAGE));
  addSegment(prp1, first);
  let remaining = length - first;
  if (remaining === 0) return R.SC_SUCCESS;
  if (remaining <= R.PAGE) {
    if (prp2 % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET;
    addSegment(prp2, remaining);
    return R.SC_SUCCESS;
  }
  let list = prp2;
  if (list % 8 !== 0) return R.SC_INVALID_PRP_OFFSET;
  while (remaining > 0) {
    const entriesLeftInPage = (R.PAGE - (list % R.PAGE)) / 8;
    const entry = port.readU64(list);
    if (port.lastResult !== DMA_OK) {
      transfer.fault = port.lastResult;
      return R.SC_DATA_TRANSFER_ERROR;
    }
    if (entriesLeftInPage === 1 && remaining > R.PAGE) {
      // The last entry of a list page, with more than one page to go: the next list page.
      if (entry % 8 !== 0) return R.SC_INVALID_PRP_OFFSET;
      list = entry;
      continue;
    }
    if (entry % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET;
    const bytes = remaining < R.PAGE ? remaining : R.PAGE;
    addSegment(entry, bytes);
    remaining -= bytes;
    list += 8;
  }
  return R.SC_SUCCESS;
}

/** Device to host: copies `source[offset..]` into the ranges walkPrps built. SC_SUCCESS or SC_DATA_TRANSFER_ERROR. */
export function copyToHost(port: DmaPort, source: Uint8Array, offset: number): number {
  let at = offset;
  for (let i = 0; i < segmentCount; i++) {
    const length = segments[2 * i + 1]!;
    if (port.write(segments[2 * i]!, source, at, length) !== DMA_OK) {
      transfer.fault = port.lastResult;
      return R.SC_DATA_TRANSFER_ERROR;
    }
    at += length;
  }
  return R.SC_SUCCESS;
}

/**
 * Host to device: gathers `length` bytes from the ranges walkPrps built into the staging
 * area, and only if every range was readable copies them to `destination[offset..]`. A fault
 * leaves the destination untouched.
 */
export function copyFromHost(port: DmaPort, destination: Uint8Array, offset: number, length: number): number {
  if (staging.length < length) staging = new Uint8Array(Math.max(length, 64 * 1024));
  let at = 0;
  for (let i = 0; i < segmentCount; i++) {
    const bytes = segments[2 * i + 1]!;
    if (port.read(segments[2 * i]!, bytes, staging, at) !== DMA_OK) {
      transfer.fault = port.lastResult;
      return R.SC_DATA_TRANSFER_ERROR;
    }
    at += bytes;
  }
  destination.set(staging.subarray(0, length), offset);
  return R.SC_SUCCESS;
}
