import { availableParallelism } from 'node:os';
import { flag, integerIn, numberIn, OptionError, oneOf, parseCommandLine, text, usageLines, value } from '../cli/command-line.js';

export type DeviceKind = 'copy-engine' | 'nvme' | 'nic';
export const ALL_KINDS: readonly DeviceKind[] = ['copy-engine', 'nvme', 'nic'];

function kindList(raw: string, name: string): DeviceKind[] {
  const kinds = raw.split(',').filter(Boolean);
  for (const kind of kinds)
    if (!ALL_KINDS.includes(kind as DeviceKind)) throw new OptionError(`${name}: unknown kind '${kind}' (known: ${ALL_KINDS.join(', ')})`);
  if (kinds.length === 0) throw new OptionError(`${name} needs at least one kind`);
  return kinds as DeviceKind[];
}

/** Every option of viommu-stress: its usage line, its default and its parser. */
const OPTIONS = {
  workers: value('N', 'DMA worker threads, 1..64 (default: available parallelism, at most 64)', Math.min(availableParallelism(), 64), integerIn(1, 64)),
  devices: value('N', 'devices of each kind (default 2)', 2, integerIn(1, 32)),
  kinds: value('LIST', 'comma-separated: copy-engine,nvme,nic (default: all)', [...ALL_KINDS], kindList),
  seconds: value('S', 'how long to run (default 10)', 10, numberIn(0.1, 86400)),
  'min-bytes': value('N', 'smallest transfer (default 512)', 512, integerIn(1, 16 * 1024 * 1024)),
  'max-bytes': value('N', 'largest transfer (default 65536)', 65536, integerIn(1, 16 * 1024 * 1024)),
  churn: value('on|off', 'map and unmap buffers around every transfer (default on)', 'on', oneOf('on', 'off')),
  'fault-rate': value('P', 'share of transfers aimed at unmapped memory, 0..1 (default 0.01)', 0.01, numberIn(0, 1)),
  depth: value('N', 'transfers in flight per device (default 4)', 4, integerIn(1, 64)),
  seed: value('N', 'seed of the pseudo-random traffic (default 1)', 1, integerIn(0, 2 ** 32 - 1)),
  json: value<string | null>('FILE', 'also write the figures as JSON (and, for a soak, a chart as FILE.svg)', null, text),
  soak: flag(
    'the long soak: 600 s (unless --seconds), a worker killed every 30 s, a save/restore of the platform half-way, RSS and page tables checked for flat slopes',
  ),
  'kill-every': value<number | null>('S', 'kill a DMA worker every S seconds (soak; default 30 with --soak)', null, numberIn(0.1, 86400)),
  'restore-at': value<number | null>(
    'F',
    'save and restore the whole platform at fraction F of the run, 0..1 (soak; default 0.5 with --soak)',
    null,
    numberIn(0, 1),
  ),
  'sample-every': value('S', 'seconds between RSS / page-table samples in a soak (default 1)', 1, numberIn(0.05, 3600)),
  quiet: flag('no progress output'),
  version: flag("print viommu's version and exit"),
};

export interface StressOptions {
  workers: number;
  devicesPerKind: number;
  kinds: DeviceKind[];
  seconds: number;
  minBytes: number;
  maxBytes: number;
  churn: boolean;
  faultRate: number;
  depth: number;
  seed: number;
  json: string | null;
  quiet: boolean;
  /** A soak (worker kills, a mid-run restore, slopes): --soak, or --kill-every / --restore-at. */
  soak?: boolean;
  /** Seconds between worker kills (0: none). */
  killEvery?: number;
  /** Fraction of the run at which the platform is saved and restored (null: never). */
  restoreAt?: number | null;
  /** Seconds between RSS and page-table samples (default 1). */
  sampleEvery?: number;
}

export const USAGE = `usage: viommu-stress [options]

Drives many devices from many threads through the IOMMU and checks every byte.

${usageLines(OPTIONS)}

Options take their value as --name VALUE or --name=VALUE.
Exit status: 0 when every transfer matched and every injected fault was reported or
counted as dropped; 1 otherwise; 2 for bad options.`;

export { OptionError };

/** Parses argv (without node and the script), naming the option at fault. */
export function parseOptions(argv: readonly string[]): StressOptions | 'help' | 'version' {
  const o = parseCommandLine(argv, OPTIONS);
  if (o === 'help') return 'help';
  if (o.version) return 'version';
  if (o['min-bytes'] > o['max-bytes']) throw new OptionError(`--min-bytes (${o['min-bytes']}) is larger than --max-bytes (${o['max-bytes']})`);
  return {
    workers: o.workers,
    devicesPerKind: o.devices,
    kinds: o.kinds,
    // A soak runs 10 minutes unless told otherwise.
    seconds: o.soak && !argv.some((arg) => arg === '--seconds' || arg.startsWith('--seconds=')) ? 600 : o.seconds,
    minBytes: o['min-bytes'],
    maxBytes: o['max-bytes'],
    churn: o.churn === 'on',
    faultRate: o['fault-rate'],
    depth: o.depth,
    seed: o.seed,
    json: o.json,
    quiet: o.quiet,
    soak: o.soak || o['kill-every'] !== null || o['restore-at'] !== null,
    killEvery: o['kill-every'] ?? (o.soak ? 30 : 0),
    restoreAt: o['restore-at'] ?? (o.soak ? 0.5 : null),
    sampleEvery: o['sample-every'],
  };
}
