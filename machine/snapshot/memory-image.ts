import type { MemoryImage } from './snapshot-format.js';

const PAGE_BYTES = 4096;

/**
 * A sparse image of `bytes`: runs of pages holding anything but zeros, copied back to back.
 * Fresh guest RAM and a disk's unwritten media are mostly zero, so a snapshot of a 64 MiB
 * machine is about as large as what the guest actually wrote. `bytes` must start 4-byte aligned.
 */
export function captureMemoryImage(bytes: Uint8Array): MemoryImage {
  const pageCount = Math.floor(bytes.length / PAGE_BYTES);
  // Scanned four bytes at a time: guest RAM and device-private memory are page-aligned views.
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, pageCount * (PAGE_BYTES / 4));
  const zero = (page: number) => isZeroWords(words, page * (PAGE_BYTES / 4), PAGE_BYTES / 4);
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
  const data = new Uint8Array(pages * PAGE_BYTES);
  let at = 0;
  for (let i = 0; i < runs.length; i += 2) {
    const from = runs[i]! * PAGE_BYTES;
    const length = runs[i + 1]! * PAGE_BYTES;
    data.set(bytes.subarray(from, from + length), at);
    at += length;
  }
  return { bytes: pageCount * PAGE_BYTES, runs, data };
}

/** Writes `image` over `target` (checked by memoryImage: it fits): zero outside its runs. */
export function applyMemoryImage(image: MemoryImage, target: Uint8Array): void {
  target.fill(0, 0, image.bytes);
  let at = 0;
  for (let i = 0; i < image.runs.length; i += 2) {
    const length = image.runs[i + 1]! * PAGE_BYTES;
    target.set(image.data.subarray(at, at + length), image.runs[i]! * PAGE_BYTES);
    at += length;
  }
}

function isZeroWords(words: Int32Array, from: number, count: number): boolean {
  for (let i = from; i < from + count; i++) if (words[i] !== 0) return false;
  return true;
}
