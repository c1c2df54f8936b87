import { DMA_OK, type WorkerRuntime } from 'viommu';
import { seededRandom } from '../../examples/traffic/device-stats.js';

/**
 * Benchmark loops that run inside a DMA worker (platform.runInWorker), each timing the
 * IOMMU path and its direct baseline in the same thread, alternating rounds so that drift
 * hits both alike. Every function returns operations per second for both.
 */

const WARM_UP_MS = 300;

export interface Rate {
  iommu: number;
  direct: number;
  /**
   * IOMMU throughput over direct throughput: the median of the rounds' ratios. A round's two
   * halves run back to back, so a pause that hits one round (a collection, the thread
   * descheduled, a browser's coarse timer) moves that round's ratio, not the figure.
   */
  ratio: number;
}

/**
 * Runs `a` and `b` for `rounds` alternating rounds of `perRound` calls each; ops/s of each,
 * and the median of the rounds' ratios.
 * Both first run alternately for WARM_UP_MS, so that the JIT has settled on every path
 * before anything is timed.
 */
function alternate(rounds: number, perRound: number, a: (n: number) => void, b: (n: number) => void): Rate {
  let timeA = 0;
  let timeB = 0;
  const warmUntil = performance.now() + WARM_UP_MS;
  while (performance.now() < warmUntil) {
    a(perRound);
    b(perRound);
  }
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    a(perRound);
    const roundA = performance.now() - t;
    t = performance.now();
    b(perRound);
    const roundB = performance.now() - t;
    timeA += roundA;
    timeB += roundB;
    ratios.push(roundB / roundA);
  }
  ratios.sort((x, y) => x - y);
  return { iommu: (rounds * perRound * 1000) / timeA, direct: (rounds * perRound * 1000) / timeB, ratio: ratios[ratios.length >> 1]! };
}

/** A DMA copy of `size` bytes from `sourceIova` to `destinationIova` vs copyWithin on the same physical bytes. */
export function copy(
  runtime: WorkerRuntime,
  args: {
    device: number;
    sourceIova: number;
    destinationIova: number;
    sourcePa: number;
    destinationPa: number;
    size: number;
    rounds: number;
    perRound: number;
  },
): Rate {
  const port = runtime.portFor(args.device);
  const ram = runtime.ram;
  const { sourceIova, destinationIova, sourcePa, destinationPa, size } = args;
  let failures = 0;
  const rate = alternate(
    args.rounds,
    args.perRound,
    (n) => {
      for (let i = 0; i < n; i++) if (port.copy(sourceIova, destinationIova, size) !== DMA_OK) failures++;
    },
    (n) => {
      for (let i = 0; i < n; i++) ram.copyWithin(destinationPa, sourcePa, sourcePa + size);
    },
  );
  if (failures > 0) throw new Error(`${failures} DMA copies failed`);
  return rate;
}

/** 8-byte descriptor reads cycling through a ring of `descriptors` 16-byte descriptors. */
export function smallReads(
  runtime: WorkerRuntime,
  args: { device: number; ringIova: number; ringPa: number; descriptors: number; rounds: number; perRound: number },
): Rate & { checksum: number } {
  const port = runtime.portFor(args.device);
  const view = new DataView(runtime.ram.buffer);
  const size = runtime.ram.byteLength;
  const mask = args.descriptors - 1;
  let checksumIommu = 0;
  let checksumDirect = 0;
  const rate = alternate(
    args.rounds,
    args.perRound,
    (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += port.readU64(args.ringIova + (i & mask) * 16);
      checksumIommu += sum;
    },
    (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += readU64Direct(view, size, args.ringPa + (i & mask) * 16);
      checksumDirect += sum;
    },
  );
  if (checksumIommu !== checksumDirect) throw new Error(`descriptor checksums differ: ${checksumIommu} vs ${checksumDirect}`);
  return { ...rate, checksum: checksumIommu };
}

/** The baseline's 8-byte read: the same bounds check and assembly as DmaPort.readU64, no translation. */
function readU64Direct(view: DataView, size: number, pa: number): number {
  if (pa < 0 || pa + 8 > size) return -1;
  return view.getUint32(pa, true) + view.getUint32(pa + 4, true) * 4294967296;
}

/** Random `bytes`-byte reads over `pages` logical pages (IOMMU) vs the same physical pages (direct). */
export function sweep(
  runtime: WorkerRuntime,
  args: { device: number; iovas: number[]; pas: number[]; bytes: number; rounds: number; perRound: number; seed: number },
): Rate & { iotlbHitRate: number } {
  const port = runtime.portFor(args.device);
  const ram = runtime.ram;
  const buffer = new Uint8Array(args.bytes);
  const order = new Int32Array(1 << 16);
  // The project's seeded PRNG (mulberry32), drawn once per access: a power-of-two LCG's low
  // bits cycle with short periods, which would turn "random" pages into a cyclic sweep.
  const random = seededRandom(args.seed);
  for (let i = 0; i < order.length; i++) order[i] = Math.floor(random() * args.iovas.length);
  const iovas = Float64Array.from(args.iovas);
  const pas = Float64Array.from(args.pas);
  const offset = 4096 - args.bytes;
  const iotlb = runtime.engine.iotlb;
  const hits0 = iotlb.hits;
  const misses0 = iotlb.misses;
  const rate = alternate(
    args.rounds,
    args.perRound,
    (n) => {
      for (let i = 0; i < n; i++) port.read(iovas[order[i & 0xffff]!]! + offset, args.bytes, buffer, 0);
    },
    (n) => {
      for (let i = 0; i < n; i++) {
        const pa = pas[order[i & 0xffff]!]! + offset;
        buffer.set(ram.subarray(pa, pa + args.bytes));
      }
    },
  );
  const hits = iotlb.hits - hits0;
  return { ...rate, iotlbHitRate: hits / (hits + iotlb.misses - misses0) };
}

/** DMA copies for `milliseconds` (worker scaling): copies per second. */
export function copyFor(
  runtime: WorkerRuntime,
  args: { device: number; sourceIova: number; destinationIova: number; size: number; milliseconds: number },
): { copies: number; seconds: number } {
  const port = runtime.portFor(args.device);
  const start = performance.now();
  let copies = 0;
  while (performance.now() - start < args.milliseconds) {
    for (let i = 0; i < 256; i++) port.copy(args.sourceIova, args.destinationIova, args.size);
    copies += 256;
  }
  return { copies, seconds: (performance.now() - start) / 1000 };
}

/** Raises faults as fast as it can for `milliseconds`: faults per second raised. */
export function faultStorm(runtime: WorkerRuntime, args: { device: number; address: number; milliseconds: number }): { faults: number; seconds: number } {
  const port = runtime.portFor(args.device);
  const start = performance.now();
  let faults = 0;
  while (performance.now() - start < args.milliseconds) {
    for (let i = 0; i < 1024; i++) if (port.readU32(args.address + (i & 255) * 4096) === -1) faults++;
  }
  return { faults, seconds: (performance.now() - start) / 1000 };
}

/**
 * Raises `count` faults `gapMicroseconds` apart, storing each raise time (performance.timeOrigin
 * based) in `times[i]`; fault i is at address + i * 4096 so the handler can find its time.
 */
export function timedFaults(
  runtime: WorkerRuntime,
  args: { device: number; address: number; count: number; gapMicroseconds: number; times: SharedArrayBuffer },
): number {
  const port = runtime.portFor(args.device);
  const times = new Float64Array(args.times);
  const origin = performance.timeOrigin;
  // Sleeping between faults (rather than spinning) leaves the main thread a core of its own,
  // as a device that raises a fault now and then would.
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < args.count; i++) {
    Atomics.wait(nap, 0, 0, args.gapMicroseconds / 1000);
    times[i] = origin + performance.now();
    port.readU32(args.address + i * 4096);
  }
  return args.count;
}

/**
 * Faults as fast as it can until `stop[0]` becomes non-zero: reads of unmapped pages, a new
 * page each time (so that nothing collapses) unless `repeat`. Faults raised.
 */
export function floodUntil(runtime: WorkerRuntime, args: { device: number; address: number; repeat: boolean; stop: SharedArrayBuffer }): number {
  const port = runtime.portFor(args.device);
  const stop = new Int32Array(args.stop);
  let faults = 0;
  while (Atomics.load(stop, 0) === 0) {
    for (let i = 0; i < 1024; i++) if (port.readU32(args.repeat ? args.address : args.address + (i & 1023) * 4096) === -1) faults++;
  }
  return faults;
}
