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

/** Every element of `bytes` is an integer in 0..255, else a RangeError naming `name[i]`. */
function checkBytes(bytes: ArrayLike<unknown>, name: string): void {
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (typeof byte !== 'number' || !Number.isInteger(byte) || byte < 0 || byte > 255)
      throw Errors.ArgumentOutOfRange(`${name}[${i}]`, 'an integer in 0..255', byte);
  }
}

/** Validates one DMA request; `name` is how errors refer to it. */
export function checkDmaRequest(request: DmaRequest, name: string): { address: number; length: number; write?: Uint8Array } {
  try {
    return checkFields(request, name);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw error;
    // A getter or Proxy trap of the caller's threw: the request cannot be read.
    throw Errors.InvalidArgument(name, 'a DMA request whose fields can be read', request);
  }
}

function checkFields(request: DmaRequest, name: string): { address: number; length: number; write?: Uint8Array } {
  if (typeof request !== 'object' || request === null) throw Errors.InvalidArgument(name, 'an object', request);
  const { address } = request;
  if (!Number.isSafeInteger(address) || address < 0) throw Errors.ArgumentOutOfRange(`${name}.address`, 'a non-negative safe integer', address);
  if (request.write !== undefined) {
    if (!(request.write instanceof Uint8Array) && !Array.isArray(request.write)) {
      throw Errors.InvalidArgument(`${name}.write`, 'a Uint8Array or an array of bytes', request.write);
    }
    // Bytes are bytes: 256, -1, 1.5 or '7' would be coerced by Uint8Array.from, so each is checked.
    if (!(request.write instanceof Uint8Array)) checkBytes(request.write, `${name}.write`);
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
