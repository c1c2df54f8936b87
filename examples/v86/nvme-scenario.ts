import { type FAULT_INFORMATION, type FaultStats, NVME, type PciFunction, type Platform, STATUS_SUCCESS } from 'viommu';
import { createV86Platform, DeviceAssignment, type GuestRange, type V86Binding, type V86BindingStats } from 'viommu/v86';
import { bootGuest, type GuestLine, type GuestRun } from './guest.js';
import { guestPattern, md5 } from './pattern.js';
import { complementOf, queuePages } from './queues.js';

/**
 * The whole story of examples/v86-linux-nvme.ts, as a function the guest tests call too:
 * Linux boots in v86 with a viommu NVMe controller at 00:07.0 behind a Translate domain that
 * maps guest RAM at IOVA = GPA; its nvme driver binds; the guest writes two known patterns
 * and reads them back (4 KiB and 1 MiB blocks, O_DIRECT); then, while the guest reads, the
 * host takes away every page of guest RAM but the controller's queues: the reads' data
 * transfers fault, the controller completes them with Data Transfer Error, Linux reports
 * the error and dd fails, and each fault reaches the host's FaultHandler; the host gives the
 * pages back and the guest reads the patterns correctly again, without a reboot.
 */

export interface ScenarioOptions {
  /** Size of each pattern in MiB (default 4). */
  mib?: number;
  /** The read after which the host revokes, counted in I/O submissions of the read-revoked step (default 16). */
  revokeAfter?: number;
  /** Progress lines (default: none). */
  log?: (text: string) => void;
}

/** What a guest step reported ("VIOMMU result <name> <ok|fail> <md5|-> rc=<n> [match=<yes|no>]"). */
export interface StepResult {
  ok: boolean;
  md5: string;
  rc: number;
  match: boolean | undefined;
}

export interface ScenarioReport {
  /** The PDO of the NVMe function (what FAULT_INFORMATION names). */
  fn: PciFunction;
  platform: Platform;
  lines: GuestLine[];
  results: Map<string, StepResult>;
  /** md5 of the patterns as the guest printed them, and as the host computed them from their definition. */
  guestMd5: Record<'a' | 'b' | 'ab', string>;
  hostMd5: Record<'a' | 'b' | 'ab', string>;
  /** The namespace (the function's private memory) holds pattern a at 0 and b after it. */
  namespaceHoldsPatterns: boolean;
  /** What was taken away (everything but the queues) and kept. */
  revoked: GuestRange[];
  kept: GuestRange[];
  /** Faults the FaultHandler received while revoked, and completions with Data Transfer Error meanwhile. */
  faults: FAULT_INFORMATION[];
  dataTransferErrors: number;
  /** Kernel log lines and dd's error from the read-revoked step. */
  dmesg: string[];
  ddErrors: string[];
  faultStats: FaultStats;
  binding: V86BindingStats;
  /** Wall-clock seconds: boot to /init, /init to done. */
  bootSeconds: number;
  workloadSeconds: number;
}

export async function runNvmeScenario(options: ScenarioOptions = {}): Promise<ScenarioReport> {
  const mib = options.mib ?? 4;
  const revokeAfter = options.revokeAfter ?? 16;
  const log = options.log ?? (() => {});
  let platform!: Platform;
  let binding: V86Binding | undefined;
  let fn!: PciFunction;
  let assignment!: DeviceAssignment;
  const faults: FAULT_INFORMATION[] = [];
  let revoked: GuestRange[] = [];
  let kept: GuestRange[] = [];
  let errorsBefore = 0;
  let errorsAfter = 0;
  let faultsBefore = 0;
  let armed = false;
  let submissions = 0;

  try {
    const run = await bootGuest({
      steps: ['info', 'pattern', 'write-4k', 'write-1m', 'read-4k', 'read-1m', 'read-revoked', 'read-restored', 'dmesg'],
      mib,
      // The machine exists, its CPU has not run: this is where a hypervisor adds its devices.
      async setup(emulator) {
        const created = await createV86Platform(emulator);
        platform = created.platform;
        binding = created.binding;
        // An NVMe controller with a 64 MiB namespace, at 00:07.0 (IRQ 11, a line no v86 device uses).
        fn = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 64 * 1024 * 1024 } });
        created.binding.attach(fn, {
          // Revocation while the guest reads: after the guest's Nth submission (I/O queue 1's tail doorbell) of the step.
          onRegisterWrite: (offset) => {
            if (!armed || offset !== IO_SQ_TAIL_DOORBELL || ++submissions < revokeAfter) return;
            armed = false;
            kept = queuePages(fn);
            revoked = complementOf(kept, platform.memory.size);
            const status = assignment.revoke(revoked);
            if (status !== STATUS_SUCCESS) throw new Error(`revoke: 0x${status.toString(16)}`);
            log(`revoked the device's access to guest RAM but ${kept.length} queue range(s), after the guest's read #${submissions}`);
          },
        });
        // The IOMMU as a hypervisor sets it up: a Translate domain, guest RAM mapped at IOVA = GPA, faults reported.
        assignment = new DeviceAssignment(platform, fn, { onFault: (fault) => faults.push(fault) });
        log('machine ready: viommu NVMe at 00:07.0 behind a Translate domain; booting Linux');
      },
      onLine(line, guest) {
        if (['ready', 'result', 'dd-error', 'error', 'summary'].includes(line.kind)) log(`guest: ${line.kind} ${line.rest}`);
        if (line.kind !== 'await') return;
        const registers = fn.registers!;
        if (line.rest === 'read-revoked') {
          errorsBefore = registers.read32(NVME.ERRORS);
          faultsBefore = faults.length;
          armed = true;
        } else if (line.rest === 'read-restored') {
          errorsAfter = registers.read32(NVME.ERRORS);
          const status = assignment.restore(revoked);
          if (status !== STATUS_SUCCESS) throw new Error(`restore: 0x${status.toString(16)}`);
          log('restored the mapping');
        }
        guest.send('go\n');
      },
    });
    return report(run, fn, platform, binding!, mib, { revoked, kept, faults: faults.slice(faultsBefore), dataTransferErrors: errorsAfter - errorsBefore });
  } finally {
    await binding?.close();
  }
}

/** I/O submission queue 1's tail doorbell (SQ1TDBL). */
const IO_SQ_TAIL_DOORBELL = NVME.DOORBELLS + 8;

function report(
  run: GuestRun,
  fn: PciFunction,
  platform: Platform,
  binding: V86Binding,
  mib: number,
  revocation: Pick<ScenarioReport, 'revoked' | 'kept' | 'faults' | 'dataTransferErrors'>,
): ScenarioReport {
  const results = new Map<string, StepResult>();
  const guestMd5 = { a: '', b: '', ab: '' };
  const dmesg: string[] = [];
  const ddErrors: string[] = [];
  let step = '';
  for (const line of run.lines) {
    const words = line.rest.split(' ');
    if (line.kind === 'step') step = line.rest;
    if (line.kind === 'pattern') guestMd5[words[0] as 'a' | 'b' | 'ab'] = words[1]!;
    if (line.kind === 'result') {
      const fields = Object.fromEntries(words.slice(3).map((w) => w.split('=') as [string, string]));
      results.set(words[0]!, {
        ok: words[1] === 'ok',
        md5: words[2]!,
        rc: Number(fields.rc),
        match: fields.match === undefined ? undefined : fields.match === 'yes',
      });
    }
    if (line.kind === 'dmesg' && step === 'read-revoked') dmesg.push(line.rest);
    if (line.kind === 'dd-error' && step === 'read-revoked') ddErrors.push(line.rest);
  }
  // The host's own look at the namespace: the patterns, made again from their definition.
  const a = guestPattern('a', mib);
  const b = guestPattern('b', mib);
  const ab = new Uint8Array(a.length + b.length);
  ab.set(a);
  ab.set(b, a.length);
  const namespace = platform.bus.privateMemoryOf(fn);
  return {
    fn,
    platform,
    lines: run.lines,
    results,
    guestMd5,
    hostMd5: { a: md5(a), b: md5(b), ab: md5(ab) },
    namespaceHoldsPatterns: md5(namespace.subarray(0, ab.length)) === md5(ab),
    ...revocation,
    dmesg,
    ddErrors,
    faultStats: platform.faultStats(),
    binding: { ...binding.stats },
    bootSeconds: (run.bootAt - run.startedAt) / 1000,
    workloadSeconds: (run.doneAt - run.bootAt) / 1000,
  };
}
