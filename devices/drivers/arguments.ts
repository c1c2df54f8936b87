import { Errors } from '../../base/errors.js';

/** Argument checks of the drivers' public methods: each names the argument at fault. */

/** A non-negative safe integer (an IOVA, a length, a block number). */
export function checkAddress(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw Errors.ArgumentOutOfRange(name, 'a non-negative safe integer', value);
}

/** A positive safe integer. */
export function checkCount(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw Errors.ArgumentOutOfRange(name, 'a positive integer', value);
}

export function checkByte(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) throw Errors.ArgumentOutOfRange(name, 'an integer in 0..255', value);
}

/** IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE bits (0..3). */
export function checkAccess(name: string, value: unknown): void {
  if (value !== 0 && value !== 1 && value !== 2 && value !== 3) throw Errors.ArgumentOutOfRange(name, 'IOMMU_ACCESS_* bits (0..3)', value);
}

/** A MappedBuffer: an object with a numeric iova. */
export function checkBuffer(name: string, value: unknown): void {
  let iova: unknown;
  try {
    iova = typeof value === 'object' && value !== null ? (value as { iova?: unknown }).iova : undefined;
  } catch {
    iova = undefined;
  }
  if (typeof iova !== 'number') throw Errors.InvalidArgument(name, 'a buffer from mapBuffer', value);
}

/** Runs `checks`; a refusal becomes the rejected promise of an async method. */
export function refuse(checks: () => void): Promise<never> | null {
  try {
    checks();
    return null;
  } catch (error) {
    return Promise.reject(error);
  }
}
