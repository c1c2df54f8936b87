import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { V86 } from 'v86';

/**
 * Boots the Linux guest that `npm run guest:build` makes (scripts/guest/) in v86 under Node,
 * and speaks the serial protocol of its /init (scripts/guest/init.sh): every line meant for
 * the host starts with "VIOMMU ", and the guest waits at "VIOMMU await <step>" until the host
 * writes "go". Shared by examples/v86-linux-nvme.ts, the guest tests and the benchmark.
 */

const FILES = ['bzImage', 'initrd.gz', 'bios.bin', 'vgabios.bin'] as const;

/** Where the guest is: VIOMMU_GUEST_DIR when set, else .guest/ at the repository root. */
export function guestDirectory(): string {
  return process.env.VIOMMU_GUEST_DIR ? resolve(process.env.VIOMMU_GUEST_DIR) : join(repositoryRoot(), '.guest');
}

/** The checkout this module is in (it may run from a bundle elsewhere in it: the benchmark's .bench/). */
function repositoryRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, 'scripts', 'guest', 'build-guest.mjs'))) {
    const parent = dirname(folder);
    if (parent === folder) return process.cwd();
    folder = parent;
  }
  return folder;
}

/** The guest's files, or an error that says how to build them (the guest is not in git). */
export function guestFiles(): Record<(typeof FILES)[number], string> {
  const directory = guestDirectory();
  const missing = FILES.filter((file) => !existsSync(join(directory, file)));
  if (missing.length > 0) {
    throw new Error(
      `the Linux guest is missing (${missing.map((file) => join(directory, file)).join(', ')}): run npm run guest:build (see scripts/guest/README.md)`,
    );
  }
  return Object.fromEntries(FILES.map((file) => [file, join(directory, file)])) as Record<(typeof FILES)[number], string>;
}

/** One "VIOMMU <kind> <rest>" line from the guest. */
export interface GuestLine {
  kind: string;
  rest: string;
  /** performance.now() when it arrived. */
  at: number;
}

export interface BootOptions {
  /** init.sh's steps (viommu.steps). */
  steps: readonly string[];
  /** Size of each test pattern in MiB (viommu.mib, default 4) and of each benchmark transfer (viommu.bench_mib). */
  mib?: number;
  benchMib?: number;
  /** The same for the 1 MiB-block benchmark transfers (viommu.bench_mib_1m; default benchMib). */
  benchMib1m?: number;
  /** Guest RAM in MiB (default 128). */
  memoryMiB?: number;
  /** Called once the machine exists and before it starts: put devices on its bus here. */
  setup: (emulator: V86) => Promise<void> | void;
  /** Every VIOMMU line, as it arrives. */
  onLine?: (line: GuestLine, guest: Guest) => void | Promise<void>;
  /** Every other console line (kernel messages, shell errors). */
  onConsole?: (text: string) => void;
  /** Give up after this many seconds (default 300). */
  timeoutSeconds?: number;
}

/** A running guest. */
export interface Guest {
  readonly emulator: V86;
  /** Writes a line to the guest's console (the answer to an await). */
  send(text: string): void;
}

/** What the run printed: every VIOMMU line, and when the guest started its /init. */
export interface GuestRun {
  lines: GuestLine[];
  /** performance.now() at the start, at "VIOMMU boot" and at "VIOMMU done". */
  startedAt: number;
  bootAt: number;
  doneAt: number;
}

/**
 * Boots the guest, runs `setup` before its CPU starts, hands every VIOMMU line to `onLine`,
 * and resolves when the guest says "VIOMMU done" (it then powers off). The emulator is
 * stopped and destroyed before this returns or throws.
 */
export async function bootGuest(options: BootOptions): Promise<GuestRun> {
  const files = guestFiles();
  const image = (path: string) => {
    const bytes = readFileSync(path);
    return { buffer: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer };
  };
  const cmdline = [
    'console=ttyS0',
    'loglevel=3',
    'tsc=reliable',
    'mitigations=off',
    // Short timeouts: a lost completion fails a run in seconds instead of minutes.
    'nvme_core.admin_timeout=5',
    'nvme_core.io_timeout=10',
    `viommu.steps=${options.steps.join(',')}`,
    `viommu.mib=${options.mib ?? 4}`,
    `viommu.bench_mib=${options.benchMib ?? 16}`,
    ...(options.benchMib1m === undefined ? [] : [`viommu.bench_mib_1m=${options.benchMib1m}`]),
  ];
  const wasm = join(dirname(createRequire(import.meta.url).resolve('v86')), 'v86.wasm');
  const emulator = new V86({
    wasm_path: wasm,
    bios: image(files['bios.bin']),
    vga_bios: image(files['vgabios.bin']),
    bzimage: image(files.bzImage),
    initrd: image(files['initrd.gz']),
    cmdline: cmdline.join(' '),
    memory_size: (options.memoryMiB ?? 128) * 1024 * 1024,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  });
  const guest: Guest = { emulator, send: (text) => emulator.serial0_send(text) };
  const run: GuestRun = { lines: [], startedAt: performance.now(), bootAt: Number.NaN, doneAt: Number.NaN };
  try {
    await new Promise<void>((resolveRun, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the guest did not finish within ${options.timeoutSeconds ?? 300} s`)),
        (options.timeoutSeconds ?? 300) * 1000,
      );
      const fail = (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      };
      let text = '';
      let handling = Promise.resolve();
      emulator.add_listener('serial0-output-byte', (byte: number) => {
        if (byte === 13) return;
        if (byte !== 10) {
          text += String.fromCharCode(byte);
          return;
        }
        const received = text;
        text = '';
        const match = /^VIOMMU (\S+)(?: (.*))?$/.exec(received);
        if (match === null) {
          options.onConsole?.(received);
          return;
        }
        const line: GuestLine = { kind: match[1]!, rest: match[2] ?? '', at: performance.now() };
        run.lines.push(line);
        if (line.kind === 'boot') run.bootAt = line.at;
        // Lines are handled one after the other, even when a handler waits.
        handling = handling.then(async () => {
          await options.onLine?.(line, guest);
          if (line.kind === 'done') {
            run.doneAt = line.at;
            clearTimeout(timer);
            resolveRun();
          }
        });
        handling.catch(fail);
      });
      emulator.add_listener('emulator-loaded', () => {
        Promise.resolve(options.setup(emulator)).then(() => emulator.run(), fail);
      });
    });
  } finally {
    await emulator.stop();
    await emulator.destroy();
  }
  return run;
}
