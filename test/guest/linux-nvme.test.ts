import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { NVME, TranslationFault } from '../../machine/index.js';
import { guestFiles } from '../../examples/v86/guest.js';

/**
 * A real guest: Debian's Linux boots in v86, its own nvme driver drives viommu's NVMe
 * controller, and every DMA goes through the IOMMU. This runs examples/v86-linux-nvme.ts
 * exactly as `npm run example:v86` does (one boot for both), and checks what it printed and
 * the facts it wrote (VIOMMU_V86_REPORT): the guest's serial output and the host's side.
 *
 * The guest comes from `npm run guest:build` (.ci/run builds it when missing). Without it this
 * test fails; it never skips.
 */
const root = new URL('../../', import.meta.url);
// One boot and the whole workload: well under a minute on an idle 2-core machine, several
// times that on a busy one (the emulator gets what CPU is left).
t.setTimeout(600_000);

interface Facts {
  checks: Array<[string, boolean]>;
  lines: Array<{ kind: string; rest: string }>;
  results: Record<string, { ok: boolean; md5: string; rc: number; match?: boolean }>;
  guestMd5: Record<'a' | 'b' | 'ab', string>;
  hostMd5: Record<'a' | 'b' | 'ab', string>;
  namespaceHoldsPatterns: boolean;
  revoked: Array<[number, number]>;
  kept: Array<[number, number]>;
  faults: Array<{ type: number; address: number; write: boolean; namesThePdo: boolean; inputMappingId: number }>;
  inputMappingId: number;
  dataTransferErrors: number;
  dmesg: string[];
  ddErrors: string[];
  faultStats: { raised: number; delivered: number; dropped: number; suppressed: number; pending: number };
  binding: { mmioReads: number; mmioWrites: number; mmioWritesDropped: number; configWrites: number; intxRaised: number; intxLowered: number };
  deviceBatches: { run: number; failed: number };
  csts: number;
  seconds: { boot: number; workload: number };
}

t.test("Linux's nvme driver in v86 drives viommu's controller: pattern round trip, revocation with faults, recovery", async (t) => {
  try {
    guestFiles();
  } catch (error) {
    t.fail((error as Error).message);
    return;
  }
  const folder = mkdtempSync(join(tmpdir(), 'viommu-guest-'));
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const reportFile = join(folder, 'report.json');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/v86-linux-nvme.ts'], {
    cwd: root,
    env: { ...process.env, VIOMMU_V86_REPORT: reportFile },
    timeout: 580_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const facts = JSON.parse(readFileSync(reportFile, 'utf8')) as Facts;
  t.comment(`boot to /init ${facts.seconds.boot.toFixed(1)} s, workload ${facts.seconds.workload.toFixed(1)} s`);
  t.match(stdout, /all 12 checks passed/, 'the example exits 0 with its summary');
  t.same(
    facts.checks.filter(([, ok]) => !ok),
    [],
    'every check of the example passed',
  );
  const line = (kind: string) => facts.lines.filter((l) => l.kind === kind).map((l) => l.rest);

  // The guest loaded the modules, found the controller, and its driver made /dev/nvme0n1.
  t.same(line('insmod-failed'), [], 'every module loaded');
  t.same(line('disk'), ['nvme0n1 bytes=67108864 lbs=512'], 'the 64 MiB namespace, 512-byte blocks');
  t.ok(
    line('dmesg').some((l) => /nvme nvme0: \d+\/0\/0 default\/read\/poll queues/.test(l)),
    'the driver set up its I/O queues (dmesg)',
  );
  t.same(line('error'), [], 'no errors from /init');
  t.same(line('summary'), ['failed=0'], "/init's own tally");

  // The patterns: the guest's md5 sums and the host's, made independently from the definition.
  t.same(facts.guestMd5, facts.hostMd5, 'the guest wrote the patterns the host expects');
  t.match(facts.results['write-4k'], { ok: true, md5: facts.hostMd5.a, rc: 0 });
  t.match(facts.results['write-1m'], { ok: true, md5: facts.hostMd5.b, rc: 0 });
  for (const step of ['read-4k', 'read-1m', 'read-restored']) {
    t.same(facts.results[step], { ok: true, md5: facts.hostMd5.ab, rc: 0, match: true }, `${step}: 8 MiB read back with O_DIRECT, md5 matches`);
  }
  t.equal(facts.namespaceHoldsPatterns, true, "the namespace (the function's private memory) holds pattern a then pattern b");

  // Revocation while the guest reads: the error Linux reports, and the failed dd.
  t.match(facts.results['read-revoked'], { ok: false, md5: '-' });
  t.not(facts.results['read-revoked']?.rc, 0, 'dd failed');
  t.match(facts.ddErrors, [/Input\/output error/], "dd's error");
  t.ok(
    facts.dmesg.some((l) => /nvme0n1: I\/O Cmd\(0x2\) @ LBA \d+, 8 blocks, I\/O Error \(sct 0x0 \/ sc 0x4\)/.test(l)),
    'Linux logged the Data Transfer Error of a 4 KiB read',
  );
  t.ok(
    facts.dmesg.some((l) => /I\/O error, dev nvme0n1, sector \d+/.test(l)),
    'and failed the request',
  );
  // What was taken away: all of guest RAM but the pages holding the controller's queues.
  const ram = 128 * 1024 * 1024;
  const total = (ranges: Array<[number, number]>) => ranges.reduce((sum, [, bytes]) => sum + bytes, 0);
  t.equal(total(facts.revoked) + total(facts.kept), ram, 'revoked and kept ranges cover guest RAM');
  t.ok(facts.kept.length >= 1 && total(facts.kept) <= 32 * 4096, `only the queues stayed mapped (${total(facts.kept) / 4096} pages)`);

  // Each refused DMA reached the FaultHandler, naming the device and the guest-physical address.
  t.ok(facts.faults.length >= 1, `${facts.faults.length} fault(s) delivered`);
  t.equal(facts.faults.length, facts.dataTransferErrors, 'one fault per command completed with Data Transfer Error');
  const revoked = (address: number) => facts.revoked.some(([start, bytes]) => address >= start && address < start + bytes);
  for (const fault of facts.faults) {
    t.same(
      { ...fault, inRevokedRange: revoked(fault.address) },
      { type: TranslationFault, address: fault.address, write: true, namesThePdo: true, inputMappingId: facts.inputMappingId, inRevokedRange: true },
      `FAULT_INFORMATION: a translation fault, the device writing read data at 0x${fault.address.toString(16)}, PhysicalDeviceObject = the PDO`,
    );
  }
  t.same(
    facts.faultStats,
    { raised: facts.faults.length, delivered: facts.faults.length, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 },
    'every fault raised was delivered',
  );

  // The machine side: no failed batch, no fatal controller, interrupts in step.
  t.equal(facts.deviceBatches.failed, 0, 'no device batch failed');
  t.equal(facts.csts & NVME.CSTS_CFS, 0, 'the controller never went fatal');
  t.equal(facts.binding.mmioWritesDropped, 0, 'every MMIO write of the driver was a register write');
  t.ok(facts.binding.intxRaised > 0 && Math.abs(facts.binding.intxRaised - facts.binding.intxLowered) <= 1, 'INTx raised and lowered in step');
});
