import { faultTypeName, type FAULT_INFORMATION, type FaultStats } from 'viommu';
import type { DeviceStats } from './device-stats.js';

/** Formats a FAULT_INFORMATION the way a driver's log line would. */
export function describeFault(info: FAULT_INFORMATION): string {
  const fault = info.Arm64 ?? info.X64;
  const pdo = info.Arm64?.PhysicalDeviceObject;
  const parts = [
    faultTypeName(fault.Type),
    `at 0x${fault.FaultAddress.toString(16)}`,
    info.Arm64 ? (info.Arm64.Flags.WriteNotRead ? 'write' : 'read') : '',
    pdo?.bdf ? `by ${pdo.bdf}` : '',
    info.Arm64 ? `stream 0x${info.Arm64.InputMappingId.toString(16)}` : `segment ${info.X64.PciSegment}`,
    fault.DomainHandle ? `domain #${fault.DomainHandle.id}` : 'no domain',
  ];
  return parts.filter(Boolean).join(', ');
}

const units = ['B', 'KiB', 'MiB', 'GiB'];
export function bytes(n: number): string {
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A fixed-width table of per-device figures. */
export function deviceTable(devices: readonly DeviceStats[], seconds: number): string {
  const header = ['device', 'kind', 'transfers', 'bytes', 'per second', 'faults (injected/reported)', 'mismatches'];
  const rows = devices.map((d) => [
    d.bdf,
    d.kind,
    String(d.transfers),
    bytes(d.bytes),
    `${bytes(d.bytes / seconds)}/s`,
    `${d.faultsInjected}/${d.faultsReported}`,
    String(d.mismatches),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function faultLine(stats: FaultStats): string {
  return `faults: ${stats.raised} raised, ${stats.delivered} delivered, ${stats.dropped} dropped, ${stats.suppressed} suppressed (${stats.collapsed} collapsed repeats), ${stats.pending} pending`;
}

/** "3 logical mappings (12 pages), 1 token (6 pages)": a domain's ranges counted by kind. */
export function describeRanges(ranges: ReadonlyArray<{ kind: string; pages: number }>): string {
  const byKind = new Map<string, { count: number; pages: number }>();
  for (const range of ranges) {
    const entry = byKind.get(range.kind) ?? { count: 0, pages: 0 };
    entry.count++;
    entry.pages += range.pages;
    byKind.set(range.kind, entry);
  }
  const names: Record<string, string> = { logical: 'logical mapping', identity: 'identity range', token: 'token', reserved: 'reserved region' };
  const parts = [...byKind].map(
    ([kind, { count, pages }]) => `${count} ${names[kind] ?? kind}${count === 1 ? '' : 's'} (${pages} page${pages === 1 ? '' : 's'})`,
  );
  return parts.length === 0 ? 'nothing mapped' : parts.join(', ');
}
