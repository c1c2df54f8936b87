import { availableParallelism, cpus, totalmem } from 'node:os';
import { writeFileSync } from 'node:fs';
import { faultFlood, faultLatency, faultRate } from './fault-scenarios.js';
import { bytesPerMappedPage, dmaCopyRatio, iotlbSweep, mapUnmapNs, smallAccessRatio, workerScaling } from './scenarios.js';
import { stress } from '../stress/stress.js';
import { runBrowserBenchmark } from './browser.js';
import { type V86Figures, v86Comparison } from './v86.js';
import { flag, numberIn, OptionError, type OptionValues, parseCommandLine, text, usageLines, value } from '../../examples/cli/command-line.js';

/**
 * `npm run bench [-- --json FILE] [--quick] [--stress-seconds N] [--browser] [--v86]`
 * Prints a table of ratios against baselines measured in the same run (and writes the
 * figures as JSON with --json). Progress goes to stderr only on a terminal.
 */
const OPTIONS = {
  json: value<string | undefined>('FILE', 'also write the figures as JSON', undefined, text),
  quick: flag('shorter runs (a smoke test of the benchmark, not figures to quote)'),
  'stress-seconds': value<number | undefined>('S', 'how long the concurrency stress runs (default 10, 2 with --quick)', undefined, numberIn(0.5, 3600)),
  browser: flag("only the DMA copy scenarios, in Chromium (Debian's chromium: scripts/install-browser.sh)"),
  v86: flag('only the v86 side by side: Linux dd on the NVMe model behind Translate vs PassThrough (needs npm run guest:build)'),
};
const USAGE = `usage: npm run bench -- [options]\n\n${usageLines(OPTIONS)}`;
let parsed: OptionValues<typeof OPTIONS> | 'help';
try {
  parsed = parseCommandLine(process.argv.slice(2), OPTIONS);
} catch (error) {
  if (!(error instanceof OptionError)) throw error;
  console.error(`bench: ${error.message}`);
  process.exit(2);
}
if (parsed === 'help') {
  console.log(USAGE);
  process.exit(0);
}
const { quick, json: jsonFile } = parsed;
// With --browser only the browser's scenarios run (test/bench/browser.ts), and the process ends there.
if (parsed.browser) await runBrowserBenchmark({ quick, json: jsonFile });
// With --v86 only the v86 side by side runs (test/bench/v86.ts).
if (parsed.v86) {
  await runV86();
  process.exit(process.exitCode ?? 0);
}
const stressSeconds = parsed['stress-seconds'] ?? (quick ? 2 : 10);
const steps = [
  'faultLatency',
  'mapUnmapNs',
  'dmaCopyRatio',
  'smallAccessRatio',
  'workerScaling',
  'faults',
  'faultFlood',
  'iotlbSweep',
  'bytesPerMappedPage',
  'stress',
];
let step = 0;
const progress = async (name: string) => {
  // Each scenario starts on a quiet machine: the previous platform's workers have had time to
  // exit and release their memory, and the heap is collected (run with --expose-gc), so that
  // neither can stop the world in the middle of the next measurements.
  await new Promise((resolve) => setTimeout(resolve, 250));
  (globalThis as { gc?: () => void }).gc?.();
  step++;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K[${step}/${steps.length}] ${name}...`);
};

const started = performance.now();
await progress('faultLatency');
const latency = await faultLatency(quick);
await progress('mapUnmapNs');
const mapUnmap = await mapUnmapNs([1, 8, 256], quick);
await progress('dmaCopyRatio');
const copy = await dmaCopyRatio([64, 4096, 65536, 1048576], quick);
await progress('smallAccessRatio');
const small = await smallAccessRatio(quick);
await progress('workerScaling');
const scaling = await workerScaling(quick);
await progress('faults');
const faults = { ...(await faultRate(quick)), faultLatencyMs: latency };
await progress('faultFlood');
const flood = await faultFlood(quick);
await progress('iotlbSweep');
const sweep = await iotlbSweep(quick);
await progress('bytesPerMappedPage');
const bytesPerPage = await bytesPerMappedPage();
await progress(`concurrency stress (${stressSeconds} s)`);
const stressResult = await stress(stressSeconds, { untilCoveredSeconds: 30 });
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');

const figures = {
  machine: {
    cpus: cpus().length,
    availableParallelism: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  quick,
  dmaCopyRatio: copy,
  smallAccessRatio: small,
  mapUnmapNs: mapUnmap,
  workerScaling: scaling,
  faultsPerSecond: faults.faultsPerSecond,
  faultsDeliveredPerSecond: faults.deliveredPerSecond,
  faultsAccountedFor: faults.accountedFor,
  faultLatencyMs: faults.faultLatencyMs,
  faultFlood: flood,
  iotlbSweep: sweep,
  bytesPerMappedPage: bytesPerPage,
  stress: stressResult,
  seconds: (performance.now() - started) / 1000,
};

const f = (n: number, digits = 2) => n.toFixed(digits);
const rows: Array<[string, string, string]> = [
  ...Object.entries(copy).map(([size, ratio]): [string, string, string] => [`dmaCopyRatio[${size}]`, f(ratio), size === '64' ? '-' : '>= 0.9']),
  ['smallAccessRatio', f(small), '>= 0.5'],
  ...Object.entries(mapUnmap).map(([pages, m]): [string, string, string] => [
    `mapUnmapNs[${pages}] map / unmap`,
    `${f(m.mapMean, 0)} ±${f(m.mapSd, 0)} / ${f(m.unmapMean, 0)} ±${f(m.unmapSd, 0)} (median ${f(m.mapMedian, 0)} / ${f(m.unmapMedian, 0)})`,
    pages === '1' ? '<= 250 / <= 350' : '-',
  ]),
  ['workerScaling (2 vs 1)', f(scaling), '>= 1.8'],
  ['faultsPerSecond (raised)', f(faults.faultsPerSecond, 0), '>= 1000000'],
  ['faults delivered per second', f(faults.deliveredPerSecond, 0), '-'],
  ['every fault accounted for', String(faults.accountedFor), 'true'],
  ['faultLatencyMs p50 / p99', `${f(faults.faultLatencyMs.p50, 3)} / ${f(faults.faultLatencyMs.p99, 3)}`, 'p99 <= 1'],
  ['faultFlood.otherDevicesRatio', f(flood.otherDevicesRatio), '>= 0.8'],
  ['faultFlood.otherFaultP99Ms (p50 / p99)', `${f(flood.otherFaultP50Ms, 3)} / ${f(flood.otherFaultP99Ms, 3)}`, 'p99 <= 1'],
  ['faultFlood: flood raised / delivered per s', `${f(flood.floodFaultsPerSecond, 0)} / ${f(flood.floodDeliveredPerSecond, 0)}`, '-'],
  ['faultFlood: every fault accounted for', String(flood.accountedFor), 'true'],
  ...sweep.map((row): [string, string, string] => [
    `iotlbSweep[${row.workingSetPages} pages]`,
    `${f(row.throughputRatio)} (hits ${f(row.iotlbHitRate * 100, 1)}%)`,
    '-',
  ]),
  ['bytesPerMappedPage', f(bytesPerPage), '<= 9'],
  ['stress: DMAs checked / violations', `${stressResult.dmas} / ${stressResult.violations}`, '0 violations'],
  [
    'stress: slot coverage (reads/writes/remaps)',
    stressResult.coverage.map((c) => `${f(c.reads * 100, 0)}/${f(c.writes * 100, 0)}/${f(c.transitions * 100, 0)}%`).join(' '),
    '100% on every worker',
  ],
];
const width = Math.max(...rows.map((r) => r[0].length));
console.log(`viommu benchmark (${figures.machine.cpus} cpus, ${figures.machine.cpuModel}, Node ${process.version}${quick ? ', quick' : ''})`);
for (const [name, value, target] of rows) console.log(`  ${name.padEnd(width)}  ${value.padEnd(28)}  ${target}`);
if (jsonFile !== undefined) writeFileSync(jsonFile, `${JSON.stringify(figures, null, 2)}\n`);
// A figure that measured nothing is a failure, not a pass.
const empty = [
  stressResult.dmas === 0 && 'the concurrency stress checked no DMA',
  faults.faultsPerSecond === 0 && 'no fault was raised',
  ...stressResult.coverageProblems.map((problem) => `the concurrency stress left slots unchecked: ${problem}`),
].filter(Boolean);
for (const problem of empty) console.error(`bench: ${problem}`);
if (stressResult.violations > 0 || empty.length > 0) process.exitCode = 1;

/** --v86: Linux in v86, the NVMe model behind Translate and PassThrough domains (test/bench/v86.ts). */
async function runV86(): Promise<void> {
  const started = performance.now();
  const progress = (text: string) => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}...`);
  };
  const v86: V86Figures = await v86Comparison({ quick, progress });
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
  const f = (n: number, digits = 2) => n.toFixed(digits);
  const qemu = { read4k: 0.93, write4k: 0.9, read1m: 0.76, write1m: 0.95 };
  const keys = ['read4k', 'write4k', 'read1m', 'write1m'] as const;
  const rows: Array<[string, string, string, string]> = keys.map((key) => [
    `v86.nvmeRatio.${key}`,
    `${f(v86.nvmeRatio[key])} (rounds ${f(v86.nvmeRatioRange[key].min)}..${f(v86.nvmeRatioRange[key].max)})`,
    '>= 0.95',
    f(qemu[key]),
  ]);
  for (const key of keys) {
    const us = (mode: 'translate' | 'pass-through') => `${f(v86.cycleMicroseconds[mode][key], 1)} µs x ${v86.cycles[mode][key]}`;
    rows.push([`${key} command cycle`, `${us('translate')} / ${us('pass-through')}`, 'Translate / PassThrough', '-']);
  }
  const { viommu, noIommu } = v86.workload;
  rows.push(['workload s, wall (CPU)', `${f(viommu.wall, 1)} (${f(viommu.cpu, 1)}) / ${f(noIommu.wall, 1)} (${f(noIommu.cpu, 1)})`, 'viommu / no IOMMU', '-']);
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(
    `viommu in v86 (${machine.cpus} cpus, ${machine.cpuModel}, Node ${process.version}; ${v86.rounds} round(s) of ${v86.benchMib} MiB, ${v86.benchMib1m} MiB with 1 MiB blocks, modes alternating every ${v86.blockCommands} commands${quick ? ', quick' : ''})`,
  );
  console.log(`  ${''.padEnd(width)}  ${'value'.padEnd(36)}  ${'target'.padEnd(24)}  QEMU 7.2 intel-iommu strict`);
  for (const [name, value, target, reference] of rows) console.log(`  ${name.padEnd(width)}  ${value.padEnd(36)}  ${target.padEnd(24)}  ${reference}`);
  if (jsonFile !== undefined) writeFileSync(jsonFile, `${JSON.stringify({ machine, quick, v86, seconds: (performance.now() - started) / 1000 }, null, 2)}\n`);
}
