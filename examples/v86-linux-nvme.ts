/**
 * Linux's own NVMe driver, in the v86 emulator, driving viommu's NVMe controller with every
 * DMA translated by the IOMMU, and revocable.
 *
 *   npm run guest:build     # once: Debian's i386 kernel + busybox + SeaBIOS in .guest/ (needs apt)
 *   npm run example:v86
 *
 * What happens (examples/v86/nvme-scenario.ts has the code, step by step):
 *  1. Boot. v86 starts with 128 MiB of RAM, SeaBIOS and the guest's kernel and initramfs
 *     (examples/v86/guest.ts), not yet running.
 *  2. Bind. Before its CPU runs, createV86Platform (viommu/v86) builds a platform over v86's
 *     RAM whose device models run on v86's own thread; an 'nvme' function is added at 00:07.0
 *     and attached to v86's PCI bus (configuration space, registers at 0xfe000000, INTx). The
 *     host then does what a hypervisor does for a device it assigns to a guest: through the V2
 *     table, a Translate domain that maps all guest RAM at IOVA = GPA (the guest's driver
 *     programs guest-physical addresses), the device attached to it, fault reporting on
 *     (DeviceAssignment).
 *  3. Pattern round trip. Linux finds the controller, its nvme driver binds (/dev/nvme0n1);
 *     /init writes two 4 MiB patterns with dd (4 KiB and 1 MiB blocks, O_DIRECT) and reads all
 *     8 MiB back both ways, comparing md5 sums. The host checks the namespace itself against
 *     the patterns, which it makes again from their definition.
 *  4. Revoke. The guest starts a 1 MiB read (4 KiB blocks); after its 16th request the host
 *     unmaps every page of guest RAM but those holding the controller's queues
 *     (UnmapLogicalRange). Commands are still fetched and completed, but their data cannot
 *     land: each completes with Data Transfer Error, Linux logs "I/O Error (sct 0x0 / sc 0x4)"
 *     and retries, then fails the read, and dd fails.
 *  5. Faults delivered. Each refused DMA reaches the host's FaultHandler as FAULT_INFORMATION
 *     naming the PDO (00:07.0) and the guest-physical address the device tried to write.
 *  6. Restore. The host maps the pages again (MapLogicalRangeEx); the guest reads the 8 MiB
 *     back and the md5 matches, with no reboot.
 *  7. Summary, and exit 0 if every check passed.
 */
import { writeFileSync } from 'node:fs';
import { NVME, PermissionFault, TranslationFault } from 'viommu';
import { runNvmeScenario } from './v86/nvme-scenario.js';

const FAULT_TYPES: Record<number, string> = { [TranslationFault]: 'TranslationFault', [PermissionFault]: 'PermissionFault' };

const report = await runNvmeScenario({ log: (text) => console.log(`  ${text}`) });
const { fn, results, faults } = report;
const checks: Array<[string, boolean]> = [];
const check = (what: string, ok: boolean) => checks.push([what, ok]);

console.log(`\nboot to /init ${report.bootSeconds.toFixed(1)} s, workload ${report.workloadSeconds.toFixed(1)} s`);
// 3. The pattern round trip, as the guest saw it and as the host sees the namespace.
check('the guest and the host agree on the patterns (md5)', report.guestMd5.ab === report.hostMd5.ab);
for (const step of ['write-4k', 'write-1m']) check(`${step}: dd wrote the pattern`, results.get(step)?.ok === true);
for (const step of ['read-4k', 'read-1m']) check(`${step}: dd read it back, md5 matches`, results.get(step)?.ok === true && results.get(step)?.match === true);
check('the namespace holds both patterns, byte for byte (host check)', report.namespaceHoldsPatterns);
// 4. Revocation: the guest's read fails with the NVMe error Linux reports.
const revoked = results.get('read-revoked');
check('read-revoked: dd failed', revoked?.ok === false);
console.log(`  dd: ${report.ddErrors[0] ?? '(no error line)'}`);
const ioErrors = report.dmesg.filter((line) => line.includes('I/O Error (sct 0x0 / sc 0x4)'));
check('Linux logged the Data Transfer Error (sct 0x0 / sc 0x4)', ioErrors.length > 0);
console.log(`  kernel: ${ioErrors[0] ?? '(none)'}`);
// 5. Every refused DMA reached the FaultHandler, naming the device and an address taken away.
const inRevoked = (address: number) => report.revoked.some(([start, bytes]) => address >= start && address < start + bytes);
check(
  `${faults.length} fault(s), one per failed command (${report.dataTransferErrors} Data Transfer Errors)`,
  faults.length > 0 && faults.length === report.dataTransferErrors,
);
check(
  'each fault names the PDO 00:07.0 and a revoked guest-physical address',
  faults.every((fault) => fault.Arm64?.PhysicalDeviceObject === fn && inRevoked(fault.Arm64.FaultAddress)),
);
for (const fault of faults.slice(0, 3)) {
  const arm64 = fault.Arm64!;
  const type = FAULT_TYPES[arm64.Type] ?? String(arm64.Type);
  console.log(
    `  FaultHandler: ${type}, ${arm64.Flags.WriteNotRead ? 'write' : 'read'} at 0x${arm64.FaultAddress.toString(16)} by ${String(arm64.PhysicalDeviceObject)}`,
  );
}
// 6. After the restore the guest reads correctly again.
check(
  'read-restored: the guest reads the patterns again, md5 matches',
  results.get('read-restored')?.ok === true && results.get('read-restored')?.match === true,
);
check(
  `every fault accounted for (${report.faultStats.raised} raised, ${report.faultStats.delivered} delivered)`,
  report.faultStats.raised === report.faultStats.delivered,
);

// 7. Summary.
console.log(
  `\nINTx: raised ${report.binding.intxRaised}, lowered ${report.binding.intxLowered}; MMIO: ${report.binding.mmioWrites} writes, ${report.binding.mmioReads} reads`,
);
for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
const failed = checks.filter(([, ok]) => !ok).length;
console.log(failed === 0 ? `\nall ${checks.length} checks passed` : `\n${failed} of ${checks.length} checks failed`);
process.exitCode = failed === 0 ? 0 : 1;

// For test/guest/linux-nvme.test.ts, which runs this example: what happened, as JSON.
if (process.env.VIOMMU_V86_REPORT) {
  const facts = {
    checks,
    lines: report.lines.map(({ kind, rest }) => ({ kind, rest })),
    results: Object.fromEntries(results),
    guestMd5: report.guestMd5,
    hostMd5: report.hostMd5,
    namespaceHoldsPatterns: report.namespaceHoldsPatterns,
    revoked: report.revoked,
    kept: report.kept,
    faults: faults.map((fault) => ({
      type: fault.Arm64?.Type,
      address: fault.Arm64?.FaultAddress,
      write: fault.Arm64?.Flags.WriteNotRead,
      namesThePdo: fault.Arm64?.PhysicalDeviceObject === fn,
      inputMappingId: fault.Arm64?.InputMappingId,
    })),
    inputMappingId: fn.inputMappingId,
    dataTransferErrors: report.dataTransferErrors,
    dmesg: report.dmesg,
    ddErrors: report.ddErrors,
    faultStats: report.faultStats,
    binding: report.binding,
    deviceBatches: report.platform.deviceBatches,
    csts: fn.registers!.read32(NVME.CSTS),
    seconds: { boot: report.bootSeconds, workload: report.workloadSeconds },
  };
  writeFileSync(process.env.VIOMMU_V86_REPORT, `${JSON.stringify(facts, null, 2)}\n`);
}
