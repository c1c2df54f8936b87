import { NVME, PAGE_SIZE, type PciFunction } from 'viommu';
import type { GuestRange } from 'viommu/v86';

/**
 * The guest pages that hold an 'nvme' function's queues right now (admin and I/O, submission
 * and completion), read from its registers: ASQ/ACQ and AQA, and the controller's queue
 * records. The guest programmed guest-physical addresses, which are also the IOVAs (the
 * domain maps guest RAM at IOVA = GPA).
 */
export function queuePages(fn: PciFunction): GuestRange[] {
  const registers = fn.registers!;
  const ranges: Array<[number, number]> = [];
  const add = (base: number, bytes: number) => {
    const start = base - (base % PAGE_SIZE);
    ranges.push([start, Math.ceil((base + bytes - start) / PAGE_SIZE) * PAGE_SIZE]);
  };
  const aqa = registers.read32(NVME.AQA);
  add(registers.read64(NVME.ASQ), ((aqa & 0xfff) + 1) * NVME.SQ_ENTRY_BYTES);
  add(registers.read64(NVME.ACQ), (((aqa >>> 16) & 0xfff) + 1) * NVME.CQ_ENTRY_BYTES);
  for (let qid = 1; qid < NVME.MAX_QUEUES; qid++) {
    for (const [record, entryBytes] of [
      [NVME.SQ_STATE, NVME.SQ_ENTRY_BYTES],
      [NVME.CQ_STATE, NVME.CQ_ENTRY_BYTES],
    ] as const) {
      const at = record + qid * NVME.QUEUE_STATE_BYTES;
      const entries = registers.read32(at + NVME.Q_ENTRIES);
      if (entries !== 0) add(registers.read64(at + NVME.Q_BASE), entries * entryBytes);
    }
  }
  return merge(ranges);
}

/** [0, size) without `keep`: what to take away from the device when only its queues may stay. */
export function complementOf(keep: readonly GuestRange[], size: number): GuestRange[] {
  const result: Array<[number, number]> = [];
  let at = 0;
  for (const [start, bytes] of merge(keep)) {
    if (start > at) result.push([at, start - at]);
    at = Math.max(at, start + bytes);
  }
  if (at < size) result.push([at, size - at]);
  return result;
}

function merge(ranges: ReadonlyArray<readonly [number, number]>): GuestRange[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const [start, bytes] of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && start <= last[0] + last[1]) last[1] = Math.max(last[1], start + bytes - last[0]);
    else merged.push([start, bytes]);
  }
  return merged;
}
