import { DMA_OK, type DmaPort } from '../../iommu/data-plane/dma-port.js';
import { NVME as R } from './nvme-registers.js';
import type { NvmeScratch } from './nvme-scratch.js';

/**
 * Physical Region Page (PRP) handling of the 'nvme' model (NVMe 1.4, 4.3): turns PRP1/PRP2
 * of a command into the list of IOVA ranges its data occupies, then moves the data.
 *
 *   - data within one page: PRP1 only (PRP1 may have a dword-aligned offset: a Get Log Page
 *     buffer often starts mid-page);
 *   - data spanning two pages: PRP2 is the second page (offset 0);
 *   - more: PRP2 points to a PRP list of 8-byte page entries (offset 0 each). A list need not
 *     start on a page (Linux takes short lists from a 256-byte pool); its entries run to the
 *     end of that page, whose last entry points to the next list page when more entries
 *     are needed.
 *
 * Ranges that follow each other in IOVA space are merged, so a buffer the driver mapped at one
 * logical range moves with one translation per merged range. The ranges and the outcome live
 * in the function's NvmeScratch.
 */

function addSegment(scratch: NvmeScratch, iova: number, length: number): void {
  const segments = scratch.segments;
  const count = scratch.segmentCount;
  const last = 2 * (count - 1);
  if (count > 0 && segments[last]! + segments[last + 1]! === iova) {
    segments[last + 1] = segments[last + 1]! + length;
    return;
  }
  segments[2 * count] = iova;
  segments[2 * count + 1] = length;
  scratch.segmentCount = count + 1;
}

/**
 * Builds the ranges of `length` bytes (1 .. 2^MDTS pages) described by PRP1/PRP2. Returns
 * SC_SUCCESS, SC_INVALID_PRP_OFFSET, or SC_DATA_TRANSFER_ERROR when a PRP list page cannot be
 * read (scratch.fault says why).
 */
export function walkPrps(port: DmaPort, scratch: NvmeScratch, prp1: number, prp2: number, length: number): number {
  scratch.segmentCount = 0;
  scratch.fault = DMA_OK;
  if (prp1 % 4 !== 0) return R.SC_INVALID_PRP_OFFSET;
  const first = Math.min(length, R.PAGE - (prp1 % R.PAGE));
  addSegment(scratch, prp1, first);
  let remaining = length - first;
  if (remaining === 0) return R.SC_SUCCESS;
  if (remaining <= R.PAGE) {
    if (prp2 % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET;
    addSegment(scratch, prp2, remaining);
    return R.SC_SUCCESS;
  }
  let list = prp2;
  if (list % 8 !== 0) return R.SC_INVALID_PRP_OFFSET;
  while (remaining > 0) {
    const entriesLeftInPage = (R.PAGE - (list % R.PAGE)) / 8;
    const entry = port.readU64(list);
    if (port.lastResult !== DMA_OK) {
      scratch.fault = port.lastResult;
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
    addSegment(scratch, entry, bytes);
    remaining -= bytes;
    list += 8;
  }
  return R.SC_SUCCESS;
}

/** Device to host: copies `source[offset..]` into the ranges walkPrps built. SC_SUCCESS or SC_DATA_TRANSFER_ERROR. */
export function copyToHost(port: DmaPort, scratch: NvmeScratch, source: Uint8Array, offset: number): number {
  const segments = scratch.segments;
  let at = offset;
  for (let i = 0; i < scratch.segmentCount; i++) {
    const length = segments[2 * i + 1]!;
    if (port.write(segments[2 * i]!, source, at, length) !== DMA_OK) {
      scratch.fault = port.lastResult;
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
export function copyFromHost(port: DmaPort, scratch: NvmeScratch, destination: Uint8Array, offset: number, length: number): number {
  const staging = scratch.stagingFor(length);
  const segments = scratch.segments;
  let at = 0;
  for (let i = 0; i < scratch.segmentCount; i++) {
    const bytes = segments[2 * i + 1]!;
    if (port.read(segments[2 * i]!, bytes, staging, at) !== DMA_OK) {
      scratch.fault = port.lastResult;
      return R.SC_DATA_TRANSFER_ERROR;
    }
    at += bytes;
  }
  destination.set(staging.subarray(0, length), offset);
  return R.SC_SUCCESS;
}

/**
 * A command that returns `data` (Identify data, a log page) to the buffer PRP1/PRP2
 * describe, `length` bytes of it. SC_SUCCESS, SC_INVALID_PRP_OFFSET or SC_DATA_TRANSFER_ERROR
 * (DW0 the fault type).
 */
export function returnData(port: DmaPort, scratch: NvmeScratch, data: Uint8Array, length: number): number {
  let status = walkPrps(port, scratch, scratch.prp1, scratch.prp2, length);
  if (status === R.SC_SUCCESS) status = copyToHost(port, scratch, data, 0);
  return finish(scratch, status, length);
}

/** A transfer's status, with what the completion needs: DW0 the fault type for a Data Transfer Error, and the bytes moved. */
export function finish(scratch: NvmeScratch, status: number, bytes: number): number {
  if (status === R.SC_DATA_TRANSFER_ERROR) {
    scratch.dw0 = scratch.fault >>> 0;
    return status;
  }
  if (status !== R.SC_SUCCESS) return status | R.DNR;
  scratch.bytes = bytes;
  return status;
}
