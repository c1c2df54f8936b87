import { type DomainModel, type Model, PAGE, Translate } from './model.js';
import type { World } from './world.js';

/** A divergence between the implementation and the model: fails the sequence (and fast-check shrinks it). */
export class Divergence extends Error {
  override name = 'Divergence';
}

export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  if (!Object.is(actual, expected) && JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Divergence(`${what}: got ${show(actual)}, the model expects ${show(expected)}`);
  }
}

export function showStatus(status: unknown): string {
  return typeof status === 'number' ? `0x${status.toString(16).toUpperCase()}` : String(status);
}

function show(value: unknown): string {
  if (typeof value === 'number' && value > 0xffff) return `0x${value.toString(16).toUpperCase()}`;
  return JSON.stringify(value) ?? String(value);
}

/** The pages of `domain` whose translation the model knows: every entry, every revoked page, and the first pages. */
function pagesToCheck(m: Model, domain: DomainModel): number[] {
  const pages = new Set<number>(domain.pages.keys());
  for (const page of m.revoked.get(domain.id) ?? []) pages.add(page);
  for (let p = 0; p < 4; p++) pages.add(p);
  if (domain.type === Translate) pages.add(domain.spacePages - 1);
  return [...pages].filter((p) => p < domain.spacePages || domain.type !== Translate);
}

/**
 * After every command: the control plane as the platform shows it equals the model.
 * Every page the model knows of, in every live domain, translates (inspectTranslation,
 * from the tables themselves) to the model's frame with the model's permissions, or faults
 * with the model's fault type; deleted handles are unknown; fault counts, delivered faults,
 * state-change calls and free guest pages match.
 */
export function checkWorld(m: Model, w: World): void {
  const platform = w.platform;
  for (const domain of m.domains.values()) {
    const handle = w.domains.get(domain.id)!;
    const summary = platform.describeDomain(handle as never);
    if (summary === undefined) throw new Divergence(`domain ${domain.id} is live in the model but unknown to describeDomain`);
    expectEqual(summary.devices, domain.devices.size, `domain ${domain.id}: attached devices`);
    expectEqual(summary.tokens, domain.tokens.size, `domain ${domain.id}: tokens`);
    for (const page of pagesToCheck(m, domain)) {
      const offset = (page * 7) % PAGE;
      const view = platform.inspectTranslation(handle as never, page * PAGE + offset);
      const expected = m.translate(domain, page);
      if ('fault' in expected) {
        // The inspector reports only what the tables say; pages beyond memory in identity domains are checked by DMA.
        if (expected.fault === 6) expectEqual(view, { faultType: 6 }, `domain ${domain.id}: page 0x${page.toString(16)}`);
      } else {
        const actual = view !== undefined && 'physicalAddress' in view ? { physicalAddress: view.physicalAddress, access: view.access } : view;
        expectEqual(actual, { physicalAddress: expected.frame * PAGE + offset, access: expected.perm }, `domain ${domain.id}: page 0x${page.toString(16)}`);
      }
    }
  }
  for (const handle of w.dead.values()) {
    if (platform.describeDomain(handle as never) !== undefined) throw new Divergence('a deleted domain handle is still known to describeDomain');
  }
  const stats = platform.faultStats();
  const base = w.faultBase;
  expectEqual(
    {
      raised: stats.raised - base.raised,
      delivered: stats.delivered - base.delivered,
      suppressed: stats.suppressed - base.suppressed,
      dropped: stats.dropped - base.dropped,
      pending: stats.pending,
    },
    { raised: m.raised, delivered: m.delivered, suppressed: m.suppressed, dropped: 0, pending: 0 },
    'faultStats',
  );
  expectEqual(w.recorded.faults.length, m.expectedFaults.length, 'faults delivered to handlers');
  m.expectedFaults.forEach((fault, i) => {
    const { device, info } = w.recorded.faults[i]!;
    const arm = info.Arm64!;
    expectEqual(
      { device, address: arm.FaultAddress, type: arm.Type, write: arm.Flags.WriteNotRead, domain: arm.DomainHandle === null ? null : 'handle' },
      { device: fault.device, address: fault.address, type: fault.type, write: fault.write, domain: fault.domain === null ? null : 'handle' },
      `fault ${i}`,
    );
    if (fault.domain !== null && arm.DomainHandle !== (w.domains.get(fault.domain) ?? w.dead.get(fault.domain)))
      throw new Divergence(`fault ${i}: DomainHandle is not domain ${fault.domain}'s handle`);
  });
  expectEqual(w.recorded.stateChanges, m.expectedStateChanges, 'state-change callback calls');
  expectEqual(platform.memory.freePageCount, m.freePages, 'free guest pages');
  for (const device of m.devices.values()) {
    const available: { value?: number } = {};
    w.V2.QueryAvailableDomainTypes!(w.devices.get(device.id), available);
    expectEqual(available.value, m.availableMask(device.fn), `device ${device.id}: QueryAvailableDomainTypes`);
  }
}
