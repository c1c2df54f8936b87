import { NVME } from 'viommu';
import { createV86Platform, DeviceAssignment, type V86Binding } from 'viommu/v86';
import { bootGuest, type GuestLine } from '../../examples/v86/guest.js';
import { median } from './rig.js';

/**
 * The v86 side by side (`npm run bench -- --v86`): Linux in v86 runs dd at queue depth 1 with
 * O_DIRECT, 4 KiB and 1 MiB blocks, write and read, on viommu's NVMe controller, behind a
 * Translate domain (guest RAM mapped at IOVA = GPA: every DMA translated and checked) and
 * behind a PassThrough domain, as QEMU's intel-iommu strict vs no IOMMU measurement.
 *
 * The two modes interleave inside each transfer. v86's speed drifts by tens of percent over a
 * run (it compiles and recompiles the guest's hot code), so two transfers a second apart
 * differ more than the IOMMU costs. Instead, the host moves the function between the two
 * domains every few commands (BLOCK_COMMANDS), at a completion-queue doorbell, when nothing
 * is in flight: the device models run inside the doorbell write on v86's thread, so every
 * command submitted has been served by then. Each command's cycle, from its submission-queue
 * tail doorbell to the next one, is charged to the mode it ran under; a cycle in which the
 * function changed domains is charged to neither. At queue depth 1 a cycle is everything one
 * command costs (the guest's syscall, the command, its DMA, the interrupt, dd's loop), so the
 * throughput ratio Translate / PassThrough is PassThrough's mean cycle over Translate's.
 *
 * A first, unmeasured round warms up. Each round's ratio is taken per transfer, the figure is
 * the median over the rounds, and the spread of the rounds is kept beside it. Times are wall
 * clock (performance.now()): v86, the guest and viommu share this one thread, and the
 * process's CPU time would also count V8's helper threads (compilation, collection).
 *
 * Then the guest's workload (write and read the patterns, the transfers) runs twice more,
 * each in a boot of its own: the function behind a Translate domain, and not behind the
 * IOMMU at all; timed from /init's "ready" to "done".
 */

const MARKS = ['bench-write-4k', 'bench-write-1m', 'bench-read-4k', 'bench-read-1m'] as const;
type Mark = (typeof MARKS)[number];
type Mode = 'translate' | 'pass-through';
const IO_SQ_TAIL = NVME.DOORBELLS + 8;
const IO_CQ_HEAD = NVME.DOORBELLS + 12;
/** Commands run under one mode before the function moves to the other domain. */
const BLOCK_COMMANDS = 16;

/** Seconds of wall time and of this process's CPU time (all its threads). */
interface Sample {
  wall: number;
  cpu: number;
}

/** One transfer's cycles: total seconds and count, per mode. */
interface Cycles {
  seconds: Record<Mode, number>;
  count: Record<Mode, number>;
}

type PerTransfer<T> = { read4k: T; write4k: T; read1m: T; write1m: T };

export interface V86Figures {
  rounds: number;
  benchMib: number;
  /** MiB moved by each 1 MiB-block transfer. */
  benchMib1m: number;
  blockCommands: number;
  /** Translate / PassThrough throughput per transfer: the median of the rounds' ratios. */
  nvmeRatio: PerTransfer<number>;
  /** The rounds' ratios, lowest and highest, and each round's. */
  nvmeRatioRange: PerTransfer<{ min: number; max: number; rounds: number[] }>;
  /** Mean microseconds per command cycle, per mode, over all rounds. */
  cycleMicroseconds: Record<Mode, PerTransfer<number>>;
  /** Command cycles measured per mode, over all rounds. */
  cycles: Record<Mode, PerTransfer<number>>;
  /** The guest's workload (ready to done), behind the IOMMU (Translate) and not behind it. */
  workload: { viommu: Sample; noIommu: Sample };
  bootSeconds: number[];
}

const KEY: Record<Mark, keyof PerTransfer<number>> = {
  'bench-write-4k': 'write4k',
  'bench-write-1m': 'write1m',
  'bench-read-4k': 'read4k',
  'bench-read-1m': 'read1m',
};

export async function v86Comparison(options: { quick: boolean; progress: (text: string) => void }): Promise<V86Figures> {
  const rounds = options.quick ? 2 : 11;
  const benchMib = options.quick ? 8 : 16;
  // 1 MiB commands take a few hundred microseconds: more of them, for as many samples as the 4 KiB transfers give.
  const benchMib1m = 24 * benchMib;
  /** rounds[r][mark]: the cycles of one transfer. */
  const measured: Array<Record<Mark, Cycles>> = [];
  const steps: string[] = ['await:warm-up', 'bench'];
  for (let round = 1; round <= rounds; round++) steps.push(`await:round-${round}`, 'bench');
  let assignment!: DeviceAssignment;
  let binding: V86Binding | undefined;
  let round = 0;
  let mode: Mode = 'translate';
  /** The transfer being measured: its cycles, the last submission, and whether the mode changed since. */
  let current: { cycles: Cycles; lastSubmission: number; switched: boolean; commands: number } | null = null;
  const run = await bootGuest({
    steps,
    benchMib,
    benchMib1m,
    timeoutSeconds: 1800,
    async setup(emulator) {
      const namespaceBytes = (8 + benchMib1m) * 1024 * 1024;
      const created = await createV86Platform(emulator, { deviceMemoryBytes: namespaceBytes + 64 * 1024 * 1024 });
      binding = created.binding;
      const fn = created.platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', modelOptions: { namespaceBytes } });
      binding.attach(fn, {
        onRegisterWrite(offset) {
          if (current === null) return;
          if (offset === IO_SQ_TAIL) {
            const now = performance.now() / 1000;
            if (current.lastSubmission >= 0 && !current.switched) {
              current.cycles.seconds[mode] += now - current.lastSubmission;
              current.cycles.count[mode]++;
            }
            current.lastSubmission = now;
            current.switched = false;
            current.commands++;
          } else if (offset === IO_CQ_HEAD && current.commands >= BLOCK_COMMANDS) {
            // Nothing is in flight at a completion doorbell (see above): move to the other domain.
            mode = mode === 'translate' ? 'pass-through' : 'translate';
            assignment.use(mode);
            current.switched = true;
            current.commands = 0;
          }
        },
      });
      assignment = new DeviceAssignment(created.platform, fn);
    },
    onLine(line: GuestLine, guest) {
      if (line.kind === 'await') {
        round = line.rest === 'warm-up' ? 0 : Number(line.rest.slice('round-'.length));
        options.progress(round === 0 ? 'v86 dd, warming up' : `v86 dd, round ${round} of ${rounds}`);
        if (round > 0) measured.push(emptyMarks(emptyCycles));
        guest.send('go\n');
      } else if (line.kind === 'mark') {
        const [name, edge, ...rest] = line.rest.split(' ');
        if (edge === 'begin') {
          const cycles = round === 0 ? emptyCycles() : measured[round - 1]![name as Mark];
          current = { cycles, lastSubmission: -1, switched: false, commands: 0 };
        } else if (current !== null) {
          if (!rest.includes('rc=0')) throw new Error(`v86 benchmark: ${name} failed (${line.rest})`);
          current = null;
        }
      } else if (line.kind === 'error' || line.kind === 'dd-error') {
        throw new Error(`v86 benchmark: the guest said ${line.kind} ${line.rest}`);
      }
    },
  }).finally(() => binding?.close());
  const nvmeRatio = {} as PerTransfer<number>;
  const nvmeRatioRange = {} as V86Figures['nvmeRatioRange'];
  const cycleMicroseconds = { translate: {}, 'pass-through': {} } as V86Figures['cycleMicroseconds'];
  const cycles = { translate: {}, 'pass-through': {} } as V86Figures['cycles'];
  for (const mark of MARKS) {
    const key = KEY[mark];
    const perRound = measured.map((r) => {
      const c = r[mark];
      if (c.count.translate === 0 || c.count['pass-through'] === 0) throw new Error(`v86 benchmark: ${mark} measured no command in one of the modes`);
      // Translate throughput / PassThrough throughput = PassThrough's mean cycle / Translate's.
      return c.seconds['pass-through'] / c.count['pass-through'] / (c.seconds.translate / c.count.translate);
    });
    nvmeRatio[key] = median(perRound);
    nvmeRatioRange[key] = { min: Math.min(...perRound), max: Math.max(...perRound), rounds: perRound };
    for (const m of ['translate', 'pass-through'] as const) {
      const seconds = measured.reduce((sum, r) => sum + r[mark].seconds[m], 0);
      const count = measured.reduce((sum, r) => sum + r[mark].count[m], 0);
      cycleMicroseconds[m][key] = (seconds / count) * 1e6;
      cycles[m][key] = count;
    }
  }
  const boots = [(run.bootAt - run.startedAt) / 1000];
  options.progress('v86 workload with viommu');
  const viommu = await workload('translate', boots);
  options.progress('v86 workload without viommu');
  const noIommu = await workload('none', boots);
  return {
    rounds,
    benchMib,
    benchMib1m,
    blockCommands: BLOCK_COMMANDS,
    nvmeRatio,
    nvmeRatioRange,
    cycleMicroseconds,
    cycles,
    workload: { viommu, noIommu },
    bootSeconds: boots,
  };
}

function emptyCycles(): Cycles {
  return { seconds: { translate: 0, 'pass-through': 0 }, count: { translate: 0, 'pass-through': 0 } };
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
