import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * Every example runs here, from its TypeScript source, exactly as a reader would run it, so
 * that none of them can rot. Each must exit 0 and print what its comments promise.
 * examples/v86-linux-nvme.ts, which boots Linux, runs in test/guest/linux-nvme.test.ts (one
 * boot for both).
 */
const run = promisify(execFile);
const root = new URL('../../', import.meta.url);

async function example(file: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return stdout;
}

t.test('examples/minimal-driver.ts copies a message through the IOMMU', async (t) => {
  const out = await example('examples/minimal-driver.ts');
  t.match(out, /interrupt vector 7/);
  t.match(out, /completion status 0, destination reads: "hello through the IOMMU"/);
  t.match(out, /faults: 0/);
});

t.test('examples/emulator-embedding.ts services device interrupts in its loop and catches a stray DMA', async (t) => {
  const out = await example('examples/emulator-embedding.ts');
  t.match(out, /serviced 1 IRQ\(s\), 1 copy completion\(s\)/);
  t.match(out, /guest memory now holds "copied by a worker" and "sector 0 of the emulated disk"/);
  t.match(out, /the disk's FaultHandler saw 1 fault\(s\) at 0x123000/);
  t.match(out, /after the resume the disk wrote "sector 1, written after resume" \(ok\) at the same IOVA, and 1 more fault\(s\) were reported/);
});

t.test('examples/demo.ts (npm start) runs verified traffic on every kind and stops the misbehaving device', async (t) => {
  const out = await example('examples/demo.ts', { VIOMMU_DEMO_SECONDS: '1' });
  for (const kind of ['copy-engine', 'nvme', 'nic']) t.match(out, new RegExp(`\\d\\d:\\d\\d\\.0  ${kind} +[1-9]\\d* `), `${kind} devices moved data`);
  t.match(out, /total: \d+ transfers, .*, 0 mismatches/);
  t.match(out, /misbehaving device 09:00\.0: stopped, stopped/);
  t.match(out, /FaultHandler: TranslationFault, at 0x[0-9a-f]+, read, by 09:00\.0/);
  t.match(out, /FaultHandler: TranslationFault, at 0x40000000, write, by 09:00\.0/);
  t.match(out, /faults: 2 raised, 2 delivered, 0 dropped/);
});

t.test('examples/stress-scenario.ts verifies every byte and accounts for every injected fault', async (t) => {
  const out = await example('examples/stress-scenario.ts', { VIOMMU_STRESS_SECONDS: '2' });
  for (const kind of ['copy-engine', 'nvme', 'nic']) t.match(out, new RegExp(`${kind}: [1-9]\\d* transfers verified`));
  t.match(out, /mismatches: 0/);
  const [, injected, reported, dropped, collapsed] = /faults injected: (\d+), reported: (\d+), dropped: (\d+), collapsed: (\d+)/.exec(out) ?? [];
  t.ok(Number(injected) > 0, 'faults were injected');
  // A repeat of a fault still waiting in the ring is collapsed into it (counted, not delivered twice).
  t.equal(Number(injected), Number(reported) + Number(dropped) + Number(collapsed), 'every injected fault reported, dropped or collapsed');
});
