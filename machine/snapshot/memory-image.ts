import { PAGE_SIZE } from '../../base/numbers.js';
import type { MemoryImage } from './snapshot-format.js';

/**
 * A sparse image of `bytes`: runs of pages holding anything but zeros, copied back to back.
 * Fresh guest RAM and a disk's unwritten media are mostly zero, so a snapshot of a 64 MiB
 * machine is about as large as what the guest actually wrote. `bytes` must start 4-byte aligned.
 */
export function captureMemoryImage(bytes: Uint8Array): MemoryImage {
  const pageCount = Math.floor(bytes.length / PAGE_SIZE);
  // Scanned four bytes at a time: guest RAM and device-private memory are page-aligned views.
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, pageCount * (PAGE_SIZE / 4));
  const zero = (page: number) => isZeroWords(words, page * (PAGE_SIZE / 4), PAGE_SIZE / 4);
  const runs: number[] = [];
  let pages = 0;
  for (let page = 0; page < pageCount; ) {
    if (zero(page)) {
      page++;
      continue;
    }
    const first = page;
    while (page < pageCount && !zero(page)) page++;
    runs.push(first, page - first);
    pages += page - first;
  }
  const data = new Uint8Array(pages * PAGE_SIZE);
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const from = runs[i]! * PAGE_SIZE;
    const length = runs[i + 1]! * PAGE_SIZE;
    data.set(bytes.subarray(from, from + length), at);
    at += length;
  }
  return { bytes: pageCount * PAGE_SIZE, runs, data };
}

/** Writes `image` over `target` (checked by memoryImage: it fits): zero outside its runs. */
export function applyMemoryImage(image: MemoryImage, target: Uint8Array): void {
  target.fill(0, 0, image.bytes);
  let at = 0;
  for (let i = 0; i < image.runs.length; i += 2) {
    const length = image.runs[i + 1]! * PAGE_SIZE;
    target.set(image.data.subarray(at, at + length), image.runs[i]! * PAGE_SIZE);
    at += length;
  }
}

function isZeroWords(words: Int32Array, from: number, count: number): boolean {
  for (let i = from; i < from + count; i++) if (words[i] !== 0) return false;
  return true;
}
