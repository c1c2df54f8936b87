/**
 * Errors thrown by the platform surface (options, guest-memory helpers, the PCI bus) and by
 * the drivers (devices/drivers/). V2 routines never throw for bad input: they return an
 * NTSTATUS. Each factory makes a fresh error (fresh stack) and keeps its message in one
 * place; messages name the option or parameter at fault.
 */
export const Errors = {
  InvalidOption: (path: string, expected: string, got: unknown) => new TypeError(`options.${path} must be ${expected} (got ${describe(got)})`),
  OptionOutOfRange: (path: string, range: string, got: unknown) => new RangeError(`options.${path} must be ${range} (got ${describe(got)})`),
  UnknownOption: (path: string, known: readonly string[]) => new TypeError(`options.${path} is not an option (known: ${known.join(', ')})`),
  InvalidArgument: (name: string, expected: string, got: unknown) => new TypeError(`${name} must be ${expected} (got ${describe(got)})`),
  ArgumentOutOfRange: (name: string, range: string, got: unknown) => new RangeError(`${name} must be ${range} (got ${describe(got)})`),
  PhysicalRangeOutOfBounds: (address: number, length: number, size: number) =>
    new RangeError(`physical range [0x${address.toString(16)}, +0x${length.toString(16)}) is outside guest memory of 0x${size.toString(16)} bytes`),
  OutOfGuestMemory: (pages: number, free: number) => new RangeError(`cannot allocate ${pages} guest page(s): ${free} free`),
  PageNotAllocated: (pfn: number) => new RangeError(`page frame 0x${pfn.toString(16)} is not allocated (double free or foreign PFN)`),
  DuplicateFunction: (bdf: string) => new RangeError(`PCI function ${bdf} already exists on this bus`),
  UnknownDeviceModel: (name: string, known: readonly string[]) => new RangeError(`unknown device model '${name}' (known: ${known.join(', ')})`),
  DeviceMemoryFull: (bytes: number) => new RangeError(`the device memory arena cannot hold ${bytes} more bytes: raise options.deviceMemoryBytes`),
  BarWindowFull: (kind: string) => new RangeError(`no room left in the ${kind} BAR window for this function's BARs`),
  IommuAlreadySetUp: () => new Error('an IOMMU is already set up on this bus, or functions were added before it'),
  TooManyFunctions: (max: number) => new RangeError(`the bus is full: options.maxFunctions is ${max}`),
  PlatformClosed: () => new Error('the platform is closed'),
  UseCreatePlatform: () => new TypeError('use createPlatform(options) to build a Platform'),
  NoWorkers: () => new Error('this platform has no DMA workers (options.workers is 0)'),
  NotARegister: (offset: number, size: number) =>
    new RangeError(`register offset 0x${Number(offset).toString(16)} is not an aligned 32-bit register of this ${size}-byte BAR`),
  InvalidDeviceModelModule: (url: string, problem: string) => new TypeError(`device model module ${url} ${problem}`),
  NotAFunctionOfThisBus: (what: string) => new TypeError(`${what} is not a PCI function of this platform`),
  SnapshotWhileBusy: (what: string) =>
    new Error(`cannot save the platform's state while ${what} (await platform.devicesIdle() and your pending dma() calls first)`),
  InvalidSnapshot: (reason: string) => new TypeError(`not a usable viommu snapshot: ${reason}`),
  NoSharedArrayBuffer: () =>
    new Error(
      'viommu needs SharedArrayBuffer, and this page has none: it is not cross-origin isolated. Serve the page over https (or from localhost) ' +
        'with the headers "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" (see docs/embedding.md)',
    ),
  WorkerGone: (threadId: number, how: string) => new Error(`DMA worker ${threadId} ${how}`),
  WorkerPoolClosed: () => new Error('the DMA worker pool is closed'),
  RoutineFailed: (routine: string, status: string) => new Error(`${routine} failed: ${status}`),
  WorkerTaskFailed: (what: string, cause: unknown) =>
    new Error(`worker task '${what}' failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause }),
  // The drivers.
  WrongDeviceModel: (name: string, bdf: string, model: string, expected: string) => new TypeError(`${name} (${bdf}) runs '${model}', not '${expected}'`),
  DriverNotStarted: (driver: string) => new Error(`the ${driver} driver is not started`),
  DriverAlreadyStarted: (driver: string) => new Error(`the ${driver} driver is already started`),
  DriverStopped: (driver: string) => new Error(`the ${driver} driver was stopped`),
  DeviceReset: (what: string) => new Error(`the ${what} was reset`),
  RingFull: (ring: string) => new Error(`the ${ring} is full: wait for completions`),
  BufferNotMapped: (name: string, iova: number) => new RangeError(`${name} is not mapped by this driver (no buffer at IOVA 0x${iova.toString(16)})`),
  BufferAlreadyUnmapped: (what: string) => new Error(`${what} is already unmapped`),
};

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  try {
    return Object.prototype.toString.call(value);
  } catch {
    // A Proxy whose traps throw: describing it must not throw in its place.
    return '[an object that cannot be read]';
  }
}
