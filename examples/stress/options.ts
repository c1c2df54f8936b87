import { availableParallelism } from 'node:os';

export type DeviceKind = 'copy-engine' | 'nvme' | 'nic';
export const ALL_KINDS: readonly DeviceKind[] = ['copy-engine', 'nvme', 'nic'];

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
}

export const USAGE = `usage: viommu-stress [options]

Drives many devices from many threads through the IOMMU and checks every byte.

  --workers N        DMA worker threads (default: available parallelism)
  --devices N        devices of each kind (default 2)
  --kinds LIST       comma-separated: copy-engine,nvme,nic (default: all)
  --seconds S        how long to run (default 10)
  --min-bytes N      smallest transfer (default 512)
  --max-bytes N      largest transfer (default 65536)
  --churn on|off     map and unmap buffers around every transfer (default on)
  --fault-rate P     share of transfers aimed at unmapped memory, 0..1 (default 0.01)
  --depth N          transfers in flight per device (default 4)
  --seed N           seed of the pseudo-random traffic (default 1)
  --json FILE        also write the figures as JSON
  --quiet            no progress output
  --help             this text

Exit status: 0 when every transfer matched and every injected fault was reported or
counted as dropped; 1 otherwise; 2 for bad options.`;

export class OptionError extends Error {}

/** Parses argv (without node and the script), naming the option at fault. */
export function parseOptions(argv: readonly string[]): StressOptions | 'help' {
  const options: StressOptions = {
    workers: availableParallelism(),
    devicesPerKind: 2,
    kinds: [...ALL_KINDS],
    seconds: 10,
    minBytes: 512,
    maxBytes: 65536,
    churn: true,
    faultRate: 0.01,
    depth: 4,
    seed: 1,
    json: null,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new OptionError(`${name} needs a value`);
      return v;
    };
    const number = (min: number, max: number, integer = true) => {
      const raw = value();
      const n = Number(raw);
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max)
        throw new OptionError(`${name} must be ${integer ? 'an integer' : 'a number'} in ${min}..${max} (got ${raw})`);
      return n;
    };
    switch (name) {
      case '--help':
      case '-h':
        return 'help';
      case '--workers':
        options.workers = number(1, 64);
        break;
      case '--devices':
        options.devicesPerKind = number(1, 32);
        break;
      case '--kinds': {
        const kinds = value().split(',').filter(Boolean);
        for (const kind of kinds)
          if (!ALL_KINDS.includes(kind as DeviceKind)) throw new OptionError(`--kinds: unknown kind '${kind}' (known: ${ALL_KINDS.join(', ')})`);
        if (kinds.length === 0) throw new OptionError('--kinds needs at least one kind');
        options.kinds = kinds as DeviceKind[];
        break;
      }
      case '--seconds':
        options.seconds = number(0.1, 86400, false);
        break;
      case '--min-bytes':
        options.minBytes = number(1, 16 * 1024 * 1024);
        break;
      case '--max-bytes':
        options.maxBytes = number(1, 16 * 1024 * 1024);
        break;
      case '--churn': {
        const v = value();
        if (v !== 'on' && v !== 'off') throw new OptionError(`--churn must be on or off (got ${v})`);
        options.churn = v === 'on';
        break;
      }
      case '--fault-rate':
        options.faultRate = number(0, 1, false);
        break;
      case '--depth':
        options.depth = number(1, 64);
        break;
      case '--seed':
        options.seed = number(0, 2 ** 32 - 1);
        break;
      case '--json':
        options.json = value();
        break;
      case '--quiet':
        options.quiet = true;
        break;
      default:
        throw new OptionError(`unknown option ${name} (try --help)`);
    }
  }
  if (options.minBytes > options.maxBytes) throw new OptionError(`--min-bytes (${options.minBytes}) is larger than --max-bytes (${options.maxBytes})`);
  return options;
}
