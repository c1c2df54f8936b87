#!/usr/bin/env node
/**
 * viommu-stress: drives many devices from many threads through the IOMMU and checks every
 * byte. `npx viommu-stress --help` lists the options.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { bytes, deviceTable, faultLine } from '../traffic/summary.js';
import { OptionError, parseOptions, USAGE, type StressOptions } from './options.js';
import { runStress, type StressProgress, type StressResult } from './runner.js';
import { runSoak, type SoakResult } from './soak.js';
import { soakChart } from './soak-chart.js';

let parsed: StressOptions | 'help' | 'version';
try {
  parsed = parseOptions(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof OptionError)) throw error;
  console.error(`viommu-stress: ${error.message}`);
  process.exit(2);
}
if (parsed === 'help') {
  console.log(USAGE);
  process.exit(0);
}
if (parsed === 'version') {
  // The package refers to itself by name (its exports list ./package.json).
  console.log(`viommu ${(createRequire(import.meta.url)('viommu/package.json') as { version: string }).version}`);
  process.exit(0);
}
const options: StressOptions = parsed;

const tty = process.stderr.isTTY && !options.quiet;
let lastLine = 0;
const progress = (p: StressProgress) => {
  if (options.quiet) return;
  const line = `${p.elapsed.toFixed(1)}/${p.seconds} s  ${p.transfers} transfers verified  ${bytes(p.bytes)}  ${p.mismatches} mismatches  ${p.faultsInjected} faults injected`;
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
  else if (p.elapsed - lastLine >= 2) {
    // Not a terminal: a plain line every two seconds, easy to log and to parse.
    lastLine = p.elapsed;
    console.error(`progress ${line}`);
  }
};

const kinds = options.kinds.join(', ');
if (!options.quiet)
  console.error(
    `viommu-stress: ${kinds}, ${options.devicesPerKind} per kind, ${options.workers} workers, ${options.seconds} s, churn ${options.churn ? 'on' : 'off'}, fault rate ${options.faultRate}`,
  );
const result: StressResult | SoakResult = options.soak ? await runSoak(options, progress) : await runStress(options, progress);
if (tty) process.stderr.write('\r\x1b[K');

console.log(deviceTable(result.devices, result.seconds));
console.log('');
for (const [kind, figures] of Object.entries(result.kinds)) {
  console.log(`${kind.padEnd(12)} ${figures.devices} device(s)  ${figures.transfersPerSecond.toFixed(0)} transfers/s  ${bytes(figures.bytesPerSecond)}/s`);
}
console.log(
  `mismatches ${result.mismatches}, unexpected failures ${result.unexpectedFailures}, faults injected ${result.faultsInjected} = reported ${result.faultsReported} + dropped ${result.faultsDropped} + collapsed ${result.faultsCollapsed}`,
);
console.log(faultLine(result.faultStats));
if ('soak' in result) {
  const s = (result as SoakResult).soak;
  const mib = (n: number) => (n / 2 ** 20).toFixed(2);
  console.log(
    `soak: ${s.workerKills} worker(s) killed${s.workerKillsFailed > 0 ? ` (${s.workerKillsFailed} kill(s) did not take)` : ''}, ${s.restores} save/restore(s)${s.restoreMismatch === null ? ' (restored state identical)' : `: ${s.restoreMismatch}`}`,
  );
  console.log(
    `soak: after ${s.warmUpSeconds.toFixed(0)} s of warm-up, RSS ${mib(s.rssSlopeBytesPerMinute)} MiB/min (flat up to ${mib(s.rssLimitBytesPerMinute)}): ${s.flat.rss ? 'flat' : 'GROWING'}; page tables ${s.tablesSlopePerMinute.toFixed(2)}/min (flat up to ${s.tablesLimitPerMinute.toFixed(1)}): ${s.flat.tables ? 'flat' : 'GROWING'}`,
  );
  for (const error of s.callbackErrors.slice(0, 5)) console.log(`soak: callback error: ${error}`);
}
console.log(result.ok ? 'result: every byte verified, every injected fault accounted for' : 'result: FAILED');
if (options.json !== null) {
  const { devices, ...rest } = result;
  const json = { ...rest, devices: devices.map(({ sampleFaults: _, ...device }) => device), options: { ...options } };
  writeFileSync(options.json, `${JSON.stringify(json, null, 2)}\n`);
  if ('soak' in result) writeFileSync(`${options.json.replace(/\.json$/, '')}.svg`, soakChart((result as SoakResult).soak));
}
process.exitCode = result.ok ? 0 : 1;
