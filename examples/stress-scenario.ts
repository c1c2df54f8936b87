/**
 * The stress scenario, from code: what `npx viommu-stress` runs, with a configuration of
 * your own. Every device kind, every worker, buffers mapped and unmapped around each
 * transfer (churn), and 2% of transfers aimed at unmapped memory (fault injection). Every
 * byte moved is checked; every injected fault must reach a driver's FaultHandler or be
 * counted as dropped.
 *
 *   node --import tsx examples/stress-scenario.ts
 */
import { availableParallelism } from 'node:os';
import { runStress } from './stress/runner.js';

const result = await runStress({
  // As many workers as the machine runs at once, within the platform's 1..64.
  workers: Math.min(availableParallelism(), 64),
  devicesPerKind: 2,
  kinds: ['copy-engine', 'nvme', 'nic'],
  seconds: Number(process.env.VIOMMU_STRESS_SECONDS ?? 3),
  minBytes: 64,
  maxBytes: 32 * 1024,
  churn: true,
  faultRate: 0.02,
  depth: 4,
  seed: 42,
  json: null,
  quiet: true,
});

for (const [kind, figures] of Object.entries(result.kinds)) {
  console.log(`${kind}: ${figures.transfers} transfers verified (${figures.transfersPerSecond.toFixed(0)}/s)`);
}
console.log(`mismatches: ${result.mismatches}`);
console.log(
  `faults injected: ${result.faultsInjected}, reported: ${result.faultsReported}, dropped: ${result.faultsDropped}, collapsed: ${result.faultsCollapsed}`,
);
console.log(`buffer mappings made and removed: ${result.mappings}`);
process.exitCode = result.ok ? 0 : 1;
