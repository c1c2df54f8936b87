import { Errors } from '../base/errors.js';

export interface DmaRequest {
  /** I/O virtual address the device puts on the bus. */
  address: number;
  /** Bytes to read (ignored for a write, whose length is `write.length`). */
  length?: number;
  /** Bytes to write; without it the access reads `length` bytes. */
  write?: Uint8Array | readonly number[];
}

/** The largest single DMA platform.dma accepts: 1 GiB. */
const MAX_DMA_BYTES = 2 ** 30;

/** Validates one DMA request; `name` is how errors refer to it. */
export function checkDmaRequest(request: DmaRequest, name: string): { address: number; length: number; write?: Uint8Array } {
  if (typeof request !== 'object' || request === null) throw Errors.InvalidArgument(name, 'an object', request);
  const { address } = request;
  if (!Number.isSafeInteger(address) || address < 0) throw Errors.ArgumentOutOfRange(`${name}.address`, 'a non-negative safe integer', address);
  if (request.write !== undefined) {
    if (!(request.write instanceof Uint8Array) && !Array.isArray(request.write)) {
      throw Errors.InvalidArgument(`${name}.write`, 'a Uint8Array or an array of bytes', request.write);
    }
    const write = Uint8Array.from(request.write);
    if (write.length < 1 || write.length > MAX_DMA_BYTES) throw Errors.ArgumentOutOfRange(`${name}.write.length`, 'an integer in 1..2^30', write.length);
    return { address, length: write.length, write };
  }
  const length = request.length;
  if (!Number.isSafeInteger(length) || (length as number) < 1 || (length as number) > MAX_DMA_BYTES) {
    throw Errors.ArgumentOutOfRange(`${name}.length`, 'an integer in 1..2^30', length);
  }
  return { address, length: length as number };
}
