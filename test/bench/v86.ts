import { NVME, type PciFunction } from 'viommu';
import { createV86Platform, DeviceAssignment, type V86Binding } from 'viommu/v86';
import { bootGuest, type GuestLine } from '../../examples/v86/guest.js';

/**
 * The v86 side-by-side (`npm run bench -- --v86`): Linux in v86 runs dd at queue depth 1 with
 * O_DIRECT, 4 KiB and 1 MiB blocks, write and read, on viommu's NVMe controller, with the
 * controller behind a Translate domain (guest RAM mapped at IOVA = GPA: every DMA translated
 * and checked) and behind a PassThrough domain, alternating in one boot (Translate first in odd
 * rounds, PassThrough first in even ones). Ratio = median Translate throughput / median
 * PassThrough throughput, as in QEMU's intel-iommu strict vs no IOMMU measurement.
 *
 * Each transfer is timed on the host twice: `wall`, from the guest's "mark begin" line to its
 * "mark end" line (dd's whole run, with its start-up and the serial console); and `io`, from
 * the first I/O submission (SQ1 tail doorbell) after "begin" to the last completion consumed
 * (CQ1 head doorbell) before "end": what the device was doing. Ratios use `io`.
 *
 * Then the guest's workload (the test steps, with 16 MiB transfers) runs twice more, once with
 * the function behind the IOMMU (Translate) and once with the function not behind it at all,
 * timed from /init's "ready" to "done".
 */

const MARKS = ['bench-write-4k', 'bench-write-1m', 'bench-read-4k', 'bench-read-1m'] as const;
type Mark = (typeof MARKS)[number];
type Mode = 'translate' | 'pass-through';
const IO_SQ_TAIL = NVME.DOORBELLS + 8;
const IO_CQ_HEAD = NVME.DOORBELLS + 12;

export interface V86Figures {
  rounds: number;
  benchMib: number;
  /** Translate / PassThrough throughput (io window), per transfer. */
  nvmeRatio: { read4k: number; write4k: number; read1m: number; write1m: number };
  /** Median MiB/s per mode and transfer, io window and wall. */
  mibPerSecond: Record<Mode, Record<Mark, { io: number; wall: number }>>;
  /** Seconds of each transfer, every round, io window. */
  samples: Record<Mode, Record<Mark, number[]>>;
  /** The guest's workload (ready to done), with the device behind the IOMMU and not behind it. */
  workloadSeconds: { viommu: number; noIommu: number; ratio: number };
  bootSeconds: number[];
}

export async function v86Comparison(options: { quick: boolean; progress: (text: string) => void }): Promise<V86Figures> {
  const rounds = options.quick ? 1 : 5;
  const benchMib = options.quick ? 8 : 32;
  const samples = { translate: emptyMarks<number[]>(() => []), 'pass-through': emptyMarks<number[]>(() => []) };
  const walls = { translate: emptyMarks<number[]>(() => []), 'pass-through': emptyMarks<number[]>(() => []) };
  const steps: string[] = [];
  const order: Mode[] = [];
  for (let round = 1; round <= rounds; round++) {
    const modes: Mode[] = round % 2 === 1 ? ['translate', 'pass-through'] : ['pass-through', 'translate'];
    for (const mode of modes) {
      steps.push(`await:${mode}`, 'bench');
      order.push(mode);
    }
  }
  let assignment!: DeviceAssignment;
  let binding: V86Binding | undefined;
  let mode: Mode = 'translate';
  let current: { mark: Mark; begin: number; firstIo: number; lastIo: number } | null = null;
  let done = 0;
  const run = await bootGuest({
    steps,
    benchMib,
    async setup(emulator) {
      const created = await createV86Platform(emulator);
      binding = created.binding;
      const platform = created.platform;
      const fn = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 128 * 1024 * 1024 } });
      binding.attach(fn, {
        onRegisterWrite(offset) {
          if (current === null) return;
          if (offset === IO_SQ_TAIL && current.firstIo === 0) current.firstIo = performance.now();
          if (offset === IO_CQ_HEAD) current.lastIo = performance.now();
        },
      });
      assignment = new DeviceAssignment(platform, fn);
    },
    onLine(line: GuestLine, guest) {
      if (line.kind === 'await') {
        mode = line.rest as Mode;
        assignment.use(mode);
        options.progress(`v86 dd, round ${Math.floor(done / 2) + 1} of ${rounds}, ${mode}`);
        done++;
        guest.send('go\n');
      } else if (line.kind === 'mark') {
        const [name, edge, ...rest] = line.rest.split(' ');
        if (edge === 'begin') current = { mark: name as Mark, begin: line.at, firstIo: 0, lastIo: 0 };
        else if (current !== null) {
          if (!rest.includes('rc=0')) throw new Error(`v86 benchmark: ${name} failed (${line.rest})`);
          samples[mode][current.mark].push((current.lastIo - current.firstIo) / 1000);
          walls[mode][current.mark].push((line.at - current.begin) / 1000);
          current = null;
        }
      } else if (line.kind === 'error' || line.kind === 'dd-error') {
        throw new Error(`v86 benchmark: the guest said ${line.kind} ${line.rest}`);
      }
    },
  }).finally(() => binding?.close());
  const mibPerSecond = {} as V86Figures['mibPerSecond'];
  for (const m of ['translate', 'pass-through'] as const) {
    mibPerSecond[m] = emptyMarks(() => ({ io: 0, wall: 0 }));
    for (const mark of MARKS) mibPerSecond[m][mark] = { io: benchMib / median(samples[m][mark]), wall: benchMib / median(walls[m][mark]) };
  }
  const ratio = (mark: Mark) => mibPerSecond.translate[mark].io / mibPerSecond['pass-through'][mark].io;
  const boots = [(run.bootAt - run.startedAt) / 1000];
  options.progress('v86 workload with viommu');
  const viommu = await workload('translate', boots);
  options.progress('v86 workload without viommu');
  const noIommu = await workload('none', boots);
  return {
    rounds,
    benchMib,
    nvmeRatio: { read4k: ratio('bench-read-4k'), write4k: ratio('bench-write-4k'), read1m: ratio('bench-read-1m'), write1m: ratio('bench-write-1m') },
    mibPerSecond,
    samples,
    workloadSeconds: { viommu, noIommu, ratio: noIommu / viommu },
    bootSeconds: boots,
  };
}

/** The guest's workload, timed from "ready" to "done": behind a Translate domain, or not behind the IOMMU. */
async function workload(kind: 'translate' | 'none', boots: number[]): Promise<number> {
  let ready = 0;
  let binding: V86Binding | undefined;
  const run = await bootGuest({
    steps: ['pattern', 'write-4k', 'write-1m', 'read-4k', 'read-1m', 'bench'],
    async setup(emulator) {
      const created = await createV86Platform(emulator);
      binding = created.binding;
      const platform = created.platform;
      const fn: PciFunction = platform.bus.addFunction({
        bus: 0,
        device: 7,
        function: 0,
        model: 'nvme',
        behindIommu: kind !== 'none',
        modelOptions: { namespaceBytes: 64 * 1024 * 1024 },
      });
      binding.attach(fn);
      if (kind === 'translate') new DeviceAssignment(platform, fn);
    },
    onLine(line) {
      if (line.kind === 'ready') ready = line.at;
      if (line.kind === 'error' || line.kind === 'dd-error' || (line.kind === 'summary' && line.rest !== 'failed=0')) {
        throw new Error(`v86 workload (${kind}): the guest said ${line.kind} ${line.rest}`);
      }
    },
  }).finally(() => binding?.close());
  boots.push((run.bootAt - run.startedAt) / 1000);
  return (run.doneAt - ready) / 1000;
}

function emptyMarks<T>(make: () => T): Record<Mark, T> {
  return Object.fromEntries(MARKS.map((mark) => [mark, make()])) as Record<Mark, T>;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
