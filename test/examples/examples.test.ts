import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * Every example runs here, from its TypeScript source, exactly as a reader would run it, so
 * that none of them can rot. Each must exit 0 and print what its comments promise.
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
});

t.test('examples/demo.ts (npm start) runs verified traffic and stops the misbehaving device', async (t) => {
  const out = await example('examples/demo.ts', { VIOMMU_DEMO_SECONDS: '1' });
  t.match(out, /total: \d+ transfers, .*, 0 mismatches/);
  t.match(out, /misbehaving device 02:00\.0: stopped, stopped/);
  t.match(out, /FaultHandler: TranslationFault, at 0x[0-9a-f]+, read, by 02:00\.0/);
  t.match(out, /faults: \d+ raised, \d+ delivered, 0 dropped/);
});
