import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createPlatform, type FaultStats, type Platform, restorePlatform } from 'viommu';
import { type DeviceStats, keepBusy, seededRandom } from '../traffic/device-stats.js';
import type { StressOptions } from './options.js';
import { deviceStatsOf, type StressProgress, type StressResult, startTraffic, summarize, type Traffic } from './runner.js';
import { flatness, type Sample, type SoakFigures } from './soak-figures.js';
import { createWitness, rebindWitness, type Witness, witnessState } from './witness.js';

/** The worker-killing module shipped next to this tool (.ts when run from the sources). */
const WORKER_EXIT = new URL(`./worker-exit.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);

export interface SoakResult extends StressResult {
  soak: SoakFigures;
  /** Slopes after warm-up, as the soak's JSON carries them at the top level. */
  rssSlopeBytesPerMinute: number;
  tablesSlopePerMinute: number;
}

const PLATFORM_OPTIONS = { memoryBytes: 256 * 1024 * 1024, deviceMemoryBytes: 256 * 1024 * 1024 } as const;

/**
 * The long soak: verified traffic on every device (churn and fault injection as configured),
 * a worker killed every `killEvery` seconds, and once, at `restoreAt` of the run, the whole
 * platform saved and restored: traffic quiesces, the drivers stop (their JS state cannot be
 * in a snapshot), the platform is saved, closed and restored, a witness device checks that
 * translations, bytes and all memory came back identical, and new drivers resume the traffic
 * on the restored functions. RSS and page tables in use are sampled throughout; after warm-up
 * their slopes must be flat (soak-figures.ts says what flat means).
 */
export async function runSoak(options: StressOptions, onProgress?: (progress: StressProgress) => void): Promise<SoakResult> {
  const callbackErrors: string[] = [];
  const platformOptions = { ...PLATFORM_OPTIONS, workers: options.workers, onCallbackError: (error: unknown) => callbackErrors.push(String(error)) };
  let platform: Platform = await createPlatform(platformOptions);
  const random = seededRandom((options.seed ^ 0x50a4) >>> 0);
  let witness: Witness = createWitness(platform, random);
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const deadline = started + options.seconds * 1000;
  const samples: Sample[] = [];
  const events: Array<{ t: number; kind: 'restore' | 'kill' }> = [];
  // Only the figures of finished traffic are kept: its drivers would keep a closed platform (and its memory) alive.
  const finished: DeviceStats[] = [];
  const stats: FaultStats[] = [];
  let traffic: Traffic[] = [];
  let kills = 0;
  let killsFailed = 0;
  let restoreMismatch: string | null = null;
  let restoring = false;
  let pendingKill: Promise<unknown> | null = null;
  // Each sample follows a full collection, so that it measures what is kept, not what is
  // merely not collected yet (the tool runs without --expose-gc, hence the flag at run time).
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  const sample = () => {
    if (restoring) return;
    collect();
    samples.push({ t: elapsed(), rssBytes: process.memoryUsage.rss(), tables: platform.pageTablesInUse });
  };
  const sampler = setInterval(sample, (options.sampleEvery ?? 1) * 1000);
  const ticker = setInterval(() => {
    const all = [...finished, ...deviceStatsOf(traffic)];
    onProgress?.({
      elapsed: elapsed(),
      seconds: options.seconds,
      transfers: all.reduce((n, d) => n + d.transfers, 0),
      bytes: all.reduce((n, d) => n + d.bytes, 0),
      mismatches: all.reduce((n, d) => n + d.mismatches, 0),
      faultsInjected: all.reduce((n, d) => n + d.faultsInjected, 0),
    });
  }, 250);
  const killer =
    (options.killEvery ?? 0) > 0
      ? setInterval(() => {
          if (restoring || pendingKill !== null) return;
          events.push({ t: elapsed(), kind: 'kill' });
          // The task's worker ends its thread: the call rejects, the pool starts another worker.
          pendingKill = platform
            .runInWorker(WORKER_EXIT, 'exitWorker')
            .then(
              () => killsFailed++,
              () => kills++,
            )
            .finally(() => {
              pendingKill = null;
            });
        }, options.killEvery! * 1000)
      : null;
  const restoreAt = options.restoreAt ?? null;
  const restoreTime = restoreAt === null ? Number.POSITIVE_INFINITY : started + restoreAt * options.seconds * 1000;
  try {
    let segmentEnd = Math.min(deadline, restoreTime);
    for (;;) {
      traffic = await startTraffic(platform, options);
      const until = () => performance.now() >= segmentEnd;
      await Promise.all(traffic.map((t) => keepBusy(options.depth, until, () => t.one())));
      await platform.devicesIdle();
      stats.push(platform.faultStats());
      for (const t of traffic) await t.stop();
      // Sample faults name the platform's handles and functions: keeping them would keep it alive.
      finished.push(...deviceStatsOf(traffic).map((device) => ({ ...device, sampleFaults: [] })));
      traffic = [];
      if (segmentEnd >= deadline) break;
      // The save and restore of the whole platform.
      restoring = true;
      events.push({ t: elapsed(), kind: 'restore' });
      // A snapshot needs an idle machine: no kill task in flight either.
      await pendingKill;
      await platform.devicesIdle();
      const before = await witnessState(platform, witness);
      const snapshot = platform.saveState();
      await platform.close();
      const restored = await restorePlatform(snapshot, { workers: options.workers, onCallbackError: platformOptions.onCallbackError });
      platform = restored.platform;
      witness = rebindWitness(platform, restored.domains, witness);
      const after = await witnessState(platform, witness);
      if (after !== before) restoreMismatch = 'the restored platform differs from the saved one (translations, bytes or memory)';
      restoring = false;
      segmentEnd = deadline;
    }
  } finally {
    clearInterval(sampler);
    clearInterval(ticker);
    if (killer !== null) clearInterval(killer);
    await pendingKill;
    await platform.close();
  }
  const seconds = elapsed();
  const soak = flatness(samples, events, options.seconds);
  const base = summarize(finished, seconds, options.workers, sumStats(stats));
  soak.workerKills = kills;
  soak.workerKillsFailed = killsFailed;
  soak.restores = events.filter((e) => e.kind === 'restore').length;
  soak.restoreMismatch = restoreMismatch;
  soak.callbackErrors = callbackErrors;
  const ok = base.ok && restoreMismatch === null && killsFailed === 0 && soak.flat.rss && soak.flat.tables && callbackErrors.length === 0;
  return { ...base, ok, soak, rssSlopeBytesPerMinute: soak.rssSlopeBytesPerMinute, tablesSlopePerMinute: soak.tablesSlopePerMinute };
}

function sumStats(all: readonly FaultStats[]): FaultStats {
  const total: FaultStats = { raised: 0, delivered: 0, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 };
  for (const s of all) for (const key of Object.keys(total) as Array<keyof FaultStats>) total[key] += s[key];
  return total;
}
