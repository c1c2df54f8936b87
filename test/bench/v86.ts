import { NVME } from 'viommu';
import { createV86Platform, DeviceAssignment, type V86Binding } from 'viommu/v86';
import { bootGuest, type GuestLine } from '../../examples/v86/guest.js';

/**
 * The v86 side by side (`npm run bench -- --v86`): Linux in v86 runs dd at queue depth 1 with
 * O_DIRECT, 4 KiB and 1 MiB blocks, write and read, on viommu's NVMe controller, behind a
 * Translate domain (guest RAM mapped at IOVA = GPA: every DMA translated and checked) and
 * behind a PassThrough domain, alternating in one boot (Translate first in odd rounds,
 * PassThrough first in even ones), as QEMU's intel-iommu strict vs no IOMMU measurement.
 *
 * A first, unmeasured round warms up (v86 compiles the guest's code paths the first time they
 * run). The 1 MiB-block transfers move 8 times as much as the 4 KiB ones, so that each lasts
 * long enough to time (about 0.1 s). Each transfer is measured from the first I/O submission (SQ1 tail doorbell) after the
 * guest's "mark begin" line to the last completion consumed (CQ1 head doorbell) before its
 * "mark end": what the device was doing, without dd's start-up or the serial console. Over that
 * window the host takes two clocks: wall time, and the CPU time of this process (user +
 * system: v86, its guest and viommu all run on this one thread). On a shared machine wall
 * time also counts the moments the process waited for a CPU; CPU time does not, so the ratio
 * (Translate / PassThrough throughput) is taken from CPU time: the median, over the rounds, of
 * each round's ratio (the two modes of a round run back to back). Wall-clock figures are
 * reported beside it.
 *
 * Then the guest's workload (write and read the patterns, 16 MiB transfers) runs twice more,
 * each in a boot of its own: the function behind a Translate domain, and not behind the IOMMU
 * at all; timed from /init's "ready" to "done", wall and CPU.
 */

const MARKS = ['bench-write-4k', 'bench-write-1m', 'bench-read-4k', 'bench-read-1m'] as const;
type Mark = (typeof MARKS)[number];
type Mode = 'translate' | 'pass-through';
const IO_SQ_TAIL = NVME.DOORBELLS + 8;
const IO_CQ_HEAD = NVME.DOORBELLS + 12;

/** One transfer: seconds of wall time and of this process's CPU time. */
interface Sample {
  wall: number;
  cpu: number;
}

export interface V86Figures {
  rounds: number;
  benchMib: number;
  /** MiB moved by each 1 MiB-block transfer. */
  benchMib1m: number;
  /** Translate / PassThrough throughput per transfer: median of the rounds' ratios, CPU time. */
  nvmeRatio: { read4k: number; write4k: number; read1m: number; write1m: number };
  /** The same from wall time. */
  nvmeRatioWall: { read4k: number; write4k: number; read1m: number; write1m: number };
  /** Median MiB/s per mode and transfer, per CPU second and per wall second. */
  mibPerSecond: Record<Mode, Record<Mark, { cpu: number; wall: number }>>;
  /** Every transfer, in round order. */
  samples: Record<Mode, Record<Mark, Sample[]>>;
  /** The guest's workload (ready to done), behind the IOMMU (Translate) and not behind it. */
  workload: { viommu: Sample; noIommu: Sample };
  bootSeconds: number[];
}

export async function v86Comparison(options: { quick: boolean; progress: (text: string) => void }): Promise<V86Figures> {
  const rounds = options.quick ? 1 : 11;
  const benchMib = options.quick ? 8 : 16;
  const benchMib1m = 8 * benchMib;
  const samples = { translate: emptyMarks<Sample[]>(() => []), 'pass-through': emptyMarks<Sample[]>(() => []) };
  const steps: string[] = ['await:warm-up', 'bench'];
  for (let round = 1; round <= rounds; round++) {
    for (const mode of round % 2 === 1 ? ['translate', 'pass-through'] : ['pass-through', 'translate']) steps.push(`await:${mode}`, 'bench');
  }
  let assignment!: DeviceAssignment;
  let binding: V86Binding | undefined;
  let mode: Mode | 'warm-up' = 'translate';
  let current: { mark: Mark; first: Clock | null; last: Clock | null } | null = null;
  let awaits = 0;
  const run = await bootGuest({
    steps,
    benchMib,
    benchMib1m,
    timeoutSeconds: 1800,
    async setup(emulator) {
      const created = await createV86Platform(emulator);
      binding = created.binding;
      const namespaceBytes = (8 + benchMib1m) * 1024 * 1024;
      const fn = created.platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', modelOptions: { namespaceBytes } });
      binding.attach(fn, {
        onRegisterWrite(offset) {
          if (current === null) return;
          if (offset === IO_SQ_TAIL && current.first === null) current.first = clock();
          if (offset === IO_CQ_HEAD) current.last = clock();
        },
      });
      assignment = new DeviceAssignment(created.platform, fn);
    },
    onLine(line: GuestLine, guest) {
      if (line.kind === 'await') {
        mode = line.rest as Mode | 'warm-up';
        if (mode !== 'warm-up') assignment.use(mode);
        options.progress(mode === 'warm-up' ? 'v86 dd, warming up' : `v86 dd, round ${Math.floor(awaits / 2) + 1} of ${rounds}, ${mode}`);
        if (mode !== 'warm-up') awaits++;
        guest.send('go\n');
      } else if (line.kind === 'mark') {
        const [name, edge, ...rest] = line.rest.split(' ');
        if (edge === 'begin') current = { mark: name as Mark, first: null, last: null };
        else if (current !== null) {
          if (!rest.includes('rc=0') || current.first === null || current.last === null) throw new Error(`v86 benchmark: ${name} failed (${line.rest})`);
          if (mode !== 'warm-up') samples[mode][current.mark].push(between(current.first, current.last));
          current = null;
        }
      } else if (line.kind === 'error' || line.kind === 'dd-error') {
        throw new Error(`v86 benchmark: the guest said ${line.kind} ${line.rest}`);
      }
    },
  }).finally(() => binding?.close());
  const mibPerSecond = {} as V86Figures['mibPerSecond'];
  for (const m of ['translate', 'pass-through'] as const) {
    mibPerSecond[m] = emptyMarks(() => ({ cpu: 0, wall: 0 }));
    for (const mark of MARKS) {
      const list = samples[m][mark];
      const mib = mark.endsWith('1m') ? benchMib1m : benchMib;
      mibPerSecond[m][mark] = { cpu: mib / median(list.map((s) => s.cpu)), wall: mib / median(list.map((s) => s.wall)) };
    }
  }
  // Per round, Translate throughput / PassThrough throughput = PassThrough time / Translate time.
  const ratio = (mark: Mark, clock: keyof Sample) => median(samples.translate[mark].map((t, round) => samples['pass-through'][mark][round]![clock] / t[clock]));
  const ratios = (clock: keyof Sample) => ({
    read4k: ratio('bench-read-4k', clock),
    write4k: ratio('bench-write-4k', clock),
    read1m: ratio('bench-read-1m', clock),
    write1m: ratio('bench-write-1m', clock),
  });
  const boots = [(run.bootAt - run.startedAt) / 1000];
  options.progress('v86 workload with viommu');
  const viommu = await workload('translate', boots);
  options.progress('v86 workload without viommu');
  const noIommu = await workload('none', boots);
  return {
    rounds,
    benchMib,
    benchMib1m,
    nvmeRatio: ratios('cpu'),
    nvmeRatioWall: ratios('wall'),
    mibPerSecond,
    samples,
    workload: { viommu, noIommu },
    bootSeconds: boots,
  };
}

/** The guest's workload, timed from "ready" to "done": behind a Translate domain, or not behind the IOMMU. */
async function workload(kind: 'translate' | 'none', boots: number[]): Promise<Sample> {
  let ready: Clock | null = null;
  let done: Clock | null = null;
  let binding: V86Binding | undefined;
  const run = await bootGuest({
    steps: ['pattern', 'write-4k', 'write-1m', 'read-4k', 'read-1m', 'bench'],
    timeoutSeconds: 1200,
    async setup(emulator) {
      const created = await createV86Platform(emulator);
      binding = created.binding;
      const fn = created.platform.bus.addFunction({
        bus: 0,
        device: 7,
        function: 0,
        model: 'nvme',
        behindIommu: kind !== 'none',
        modelOptions: { namespaceBytes: 64 * 1024 * 1024 },
      });
      binding.attach(fn);
      if (kind === 'translate') new DeviceAssignment(created.platform, fn);
    },
    onLine(line) {
      if (line.kind === 'ready') ready = clock();
      if (line.kind === 'done') done = clock();
      if (line.kind === 'error' || line.kind === 'dd-error' || (line.kind === 'summary' && line.rest !== 'failed=0')) {
        throw new Error(`v86 workload (${kind}): the guest said ${line.kind} ${line.rest}`);
      }
    },
  }).finally(() => binding?.close());
  boots.push((run.bootAt - run.startedAt) / 1000);
  if (ready === null || done === null) throw new Error(`v86 workload (${kind}): no ready or done line`);
  return between(ready, done);
}

interface Clock {
  wall: number;
  cpu: number;
}

function clock(): Clock {
  const { user, system } = process.cpuUsage();
  return { wall: performance.now() / 1000, cpu: (user + system) / 1e6 };
}

function between(from: Clock, to: Clock): Sample {
  return { wall: to.wall - from.wall, cpu: to.cpu - from.cpu };
}

function emptyMarks<T>(make: () => T): Record<Mark, T> {
  return Object.fromEntries(MARKS.map((mark) => [mark, make()])) as Record<Mark, T>;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
