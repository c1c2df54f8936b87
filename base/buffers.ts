import { isInstanceOf } from './values.js';

/**
 * Where the machine's memory comes from. With DMA workers, everything the data plane reads
 * (guest RAM, page tables, device contexts, fault rings, register files...) must be a
 * SharedArrayBuffer that every thread sees. With the data plane on the calling thread
 * (options.dataPlane 'main-thread'), plain ArrayBuffers serve just as well, so such a
 * platform needs no SharedArrayBuffer at all: it runs in a page without cross-origin
 * isolation, next to an emulator whose RAM is not shared (v86's WebAssembly memory).
 *
 * Atomics.load/store/add/compareExchange work on either kind; Atomics.wait and waitAsync only
 * on shared memory, which is why the fault dispatcher never sleeps on a local buffer.
 */
export type BufferAllocator = (byteLength: number) => ArrayBufferLike;

/** Memory for a data plane in worker threads. */
export const sharedBuffer: BufferAllocator = (byteLength) => new SharedArrayBuffer(byteLength);

/** Memory for a data plane on the calling thread only. */
export const localBuffer: BufferAllocator = (byteLength) => new ArrayBuffer(byteLength);

/** Whether `buffer` can be handed to another thread without being copied. */
export function isShared(buffer: ArrayBufferLike): buffer is SharedArrayBuffer {
  return typeof SharedArrayBuffer !== 'undefined' && isInstanceOf(buffer, SharedArrayBuffer);
}
