#!/usr/bin/env node
/**
 * viommu-stress: drives many devices from many threads through the IOMMU and checks every
 * byte. `npx viommu-stress --help` lists the options.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { bytes, deviceTable, faultLine } from '../traffic/summary.js';
import { OptionError, parseOptions, USAGE, type StressOptions } from './options.js';
import { runStress, type StressProgress } from './runner.js';

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
const result = await runStress(options, progress);
if (tty) process.stderr.write('\r\x1b[K');

console.log(deviceTable(result.devices, result.seconds));
console.log('');
for (const [kind, figures] of Object.entries(result.kinds)) {
  console.log(`${kind.padEnd(12)} ${figures.devices} device(s)  ${figures.transfersPerSecond.toFixed(0)} transfers/s  ${bytes(figures.bytesPerSecond)}/s`);
}
console.log(
  `mismatches ${result.mismatches}, unexpected failures ${result.unexpectedFailures}, faults injected ${result.faultsInjected} = reported ${result.faultsReported} + dropped ${result.faultsDropped}`,
);
console.log(faultLine(result.faultStats));
console.log(result.ok ? 'result: every byte verified, every injected fault accounted for' : 'result: FAILED');
if (options.json !== null) {
  const { devices, ...rest } = result;
  const json = { ...rest, devices: devices.map(({ sampleFaults: _, ...device }) => device), options: { ...options } };
  writeFileSync(options.json, `${JSON.stringify(json, null, 2)}\n`);
}
process.exitCode = result.ok ? 0 : 1;
