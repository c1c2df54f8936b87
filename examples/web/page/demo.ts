import { type DomainBar, FaultTimeline, HitRateChart, KIND_COLOURS, MappingsChart, ThroughputChart } from './charts.js';
import { DemoMachine, type DeviceEvent, type FaultEvent } from './demo-machine.js';

/**
 * The web demo (`npm run demo:web`): builds the machine, then every half second samples it
 * into the charts, the fault table and the device log. `globalThis.viommuDemo.snapshot()`
 * gives the same figures to the browser tests.
 */

const KINDS = ['copy-engine', 'nvme', 'nic'] as const;
const SAMPLE_MS = 500;
/** Samples kept: one minute. */
const KEEP = 121;
const MiB = 1024 * 1024;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

const hex = (n: number) => `0x${n.toString(16)}`;

interface Demo {
  ready: boolean;
  error: string | null;
  machine: DemoMachine | null;
  snapshot(): unknown;
}

const demo: Demo = { ready: false, error: null, machine: null, snapshot: () => ({ ready: false, error: demo.error }) };
Object.assign(globalThis, { viommuDemo: demo });

function widthOf(target: HTMLElement): number {
  return Math.max(280, Math.floor(target.clientWidth));
}

async function main(): Promise<void> {
  let machine: DemoMachine;
  try {
    machine = await DemoMachine.start();
  } catch (error) {
    demo.error = error instanceof Error ? error.message : String(error);
    const problem = element('problem');
    problem.textContent = `The demo cannot start: ${demo.error}`;
    problem.hidden = false;
    return;
  }
  demo.machine = machine;
  const platform = machine.platform;
  element('status-workers').textContent = String(platform.options.workers);

  const plots = {
    throughput: new ThroughputChart(element('throughput'), widthOf(element('throughput')), KINDS),
    hitRate: new HitRateChart(element('hit-rate'), widthOf(element('hit-rate'))),
    mappings: new MappingsChart(element('mappings'), widthOf(element('mappings'))),
    faults: new FaultTimeline(element('fault-timeline'), widthOf(element('fault-timeline'))),
  };
  new ResizeObserver(() => {
    plots.throughput.resize(widthOf(element('throughput')));
    plots.hitRate.resize(widthOf(element('hit-rate')));
    plots.mappings.resize(widthOf(element('mappings')));
    plots.faults.resize(widthOf(element('fault-timeline')));
  }).observe(document.querySelector('main')!);

  // Controls.
  const pause = element<HTMLButtonElement>('pause');
  const nic = element<HTMLSelectElement>('nic');
  const revoke = element<HTMLButtonElement>('revoke');
  const rogue = element<HTMLButtonElement>('rogue');
  for (const driver of machine.nics()) nic.add(new Option(`NIC ${driver.fn.bdf}`, driver.fn.bdf));
  pause.addEventListener('click', async () => {
    pause.disabled = true;
    if (machine.running) {
      await machine.pause();
      pause.textContent = 'Resume traffic';
    } else {
      machine.resume();
      pause.textContent = 'Pause traffic';
    }
    pause.disabled = false;
  });
  revoke.addEventListener('click', () => {
    try {
      machine.revokeTxBuffer(nic.value);
    } catch (error) {
      // The next TX entry is in flight (a full ring): the driver's own rule, not a failure.
      machine.events.push({ at: machine.now(), bdf: nic.value, text: `not revoked: ${error instanceof Error ? error.message : String(error)}`, tone: 'info' });
    }
    render();
  });
  rogue.addEventListener('click', () => {
    if (machine.misbehaving) machine.stopMisbehaving();
    else machine.startMisbehaving();
    rogue.textContent = machine.misbehaving ? 'Stop the misbehaving device' : 'Start the misbehaving device';
    rogue.classList.toggle('on', machine.misbehaving);
  });
  for (const control of [pause, nic, revoke, rogue]) control.disabled = false;

  // Samples.
  const time: number[] = [];
  const throughput = new Map<string, number[]>(KINDS.map((kind) => [kind, []]));
  const hitRates = new Map<number, Array<number | null>>();
  const workerLabels = new Map<number, string>();
  let lastBytes = new Map<string, number>();
  let lastAt = machine.now();
  let lastLookups = new Map<number, { threadId: number; hits: number; misses: number }>();

  function sample(): void {
    const at = machine.now();
    const seconds = Math.max(1e-3, at - lastAt);
    const devices = machine.devices();
    const bytesNow = new Map<string, number>();
    for (const d of devices) bytesNow.set(d.kind, (bytesNow.get(d.kind) ?? 0) + d.bytes);
    time.push(at);
    for (const kind of KINDS) throughput.get(kind)!.push(((bytesNow.get(kind) ?? 0) - (lastBytes.get(kind) ?? 0)) / seconds / MiB);
    const lookups = new Map<number, { threadId: number; hits: number; misses: number }>();
    for (const worker of machine.workerStats()) {
      lookups.set(worker.slot, { threadId: worker.threadId, hits: worker.iotlbHits, misses: worker.iotlbMisses });
      workerLabels.set(worker.slot, `worker ${worker.threadId} (slot ${worker.slot})`);
      if (!hitRates.has(worker.slot))
        hitRates.set(
          worker.slot,
          time.slice(0, -1).map(() => null),
        );
    }
    for (const [slot, rates] of hitRates) {
      const now = lookups.get(slot);
      const before = lastLookups.get(slot);
      // A successor in the slot counts from zero: its first interval starts there.
      const base = before !== undefined && now !== undefined && before.threadId === now.threadId ? before : { hits: 0, misses: 0 };
      const hits = now === undefined ? 0 : now.hits - base.hits;
      const total = now === undefined ? 0 : hits + now.misses - base.misses;
      rates.push(total > 0 ? (100 * hits) / total : null);
    }
    for (const series of [time, ...throughput.values(), ...hitRates.values()]) if (series.length > KEEP) series.splice(0, series.length - KEEP);
    lastBytes = bytesNow;
    lastLookups = lookups;
    lastAt = at;
    render();
  }

  let shownFaults = -1;
  let shownEvents = -1;

  function render(): void {
    const devices = machine.devices();
    const transfers = devices.reduce((sum, d) => sum + d.transfers, 0);
    const moved = devices.reduce((sum, d) => sum + d.bytes, 0);
    const mismatches = devices.reduce((sum, d) => sum + d.mismatches, 0);
    element('status-seconds').textContent = `${machine.now().toFixed(0)} s`;
    element('status-transfers').textContent = transfers.toLocaleString('en');
    element('status-bytes').textContent = bytes(moved);
    const mismatchCell = element('status-mismatches');
    mismatchCell.textContent = String(mismatches);
    mismatchCell.className = mismatches === 0 ? 'good' : 'bad';
    element('status-faults').textContent = String(platform.faultStats().delivered);

    plots.throughput.update(time, throughput);
    plots.hitRate.update(time, hitRates, workerLabels);
    const domains = machine.domains();
    plots.mappings.update(domains.map((d): DomainBar => ({ label: d.bdf, kind: d.kind, mappedPages: d.mappedPages, mappings: d.mappings })));
    const lanes = domains.map((d) => d.bdf);
    const now = machine.now();
    plots.faults.update(
      now,
      machine.faults.filter((f) => f.at >= now - 60).map((f) => ({ at: f.at, lane: Math.max(0, lanes.indexOf(f.bdf)), typeName: f.typeName })),
      lanes,
    );
    if (machine.faults.length !== shownFaults) renderFaults(machine.faults, machine.faults.length - Math.max(0, shownFaults));
    shownFaults = machine.faults.length;
    if (machine.events.length !== shownEvents) renderEvents(machine.events);
    shownEvents = machine.events.length;
  }

  setInterval(() => machine.poll(), 100);
  setInterval(sample, SAMPLE_MS);

  demo.snapshot = () => {
    machine.poll();
    const devices = machine.devices();
    const kinds: Record<string, { devices: number; transfers: number; bytes: number; mismatches: number; unexpectedFailures: number }> = {};
    for (const d of devices) {
      const k = (kinds[d.kind] ??= { devices: 0, transfers: 0, bytes: 0, mismatches: 0, unexpectedFailures: 0 });
      k.devices++;
      k.transfers += d.transfers;
      k.bytes += d.bytes;
      k.mismatches += d.mismatches;
      k.unexpectedFailures += d.unexpectedFailures;
    }
    return {
      ready: true,
      error: null,
      seconds: machine.now(),
      workers: platform.options.workers,
      running: machine.running,
      kinds,
      laneErrors: machine.laneErrors,
      revocations: machine.revocations,
      nicTxFailed: Object.fromEntries(machine.nics().map((driver) => [driver.fn.bdf, driver.txFailed])),
      nicDomains: Object.fromEntries(machine.nics().map((driver) => [driver.fn.bdf, (driver.domain as unknown as { id: number }).id])),
      faults: machine.faults,
      events: machine.events,
      domains: machine.domains(),
      workerStats: machine.workerStats(),
      faultStats: platform.faultStats(),
      samples: time.length,
    };
  };
  demo.ready = true;
  sample();
}

function renderFaults(faults: readonly FaultEvent[], fresh: number): void {
  const body = element('faults').querySelector('tbody')!;
  element('no-faults').hidden = faults.length > 0;
  const rows = faults.slice(-60).reverse();
  body.replaceChildren(
    ...rows.map((fault, i) => {
      const row = document.createElement('tr');
      if (i < fresh) row.className = 'fresh';
      const cells: Array<[string, boolean]> = [
        [`${fault.at.toFixed(1)} s`, false],
        [fault.bdf, true],
        [fault.typeName, false],
        [hex(fault.address), true],
        [fault.write ? 'write' : 'read', false],
        [hex(fault.inputMappingId), true],
        [fault.domainId === null ? 'gone' : `#${fault.domainId}`, true],
        [hex(fault.flags), true],
        [hex(fault.iommuBaseAddress), true],
      ];
      for (const [text, mono] of cells) {
        const cell = row.insertCell();
        cell.textContent = text;
        if (mono) cell.className = 'mono';
      }
      const kind = document.createElement('span');
      kind.className = 'kind';
      kind.style.background = KIND_COLOURS[fault.kind] ?? '#94a3b8';
      row.cells[1]!.prepend(kind);
      return row;
    }),
  );
}

function renderEvents(events: readonly DeviceEvent[]): void {
  element('events').replaceChildren(
    ...events
      .slice(-80)
      .reverse()
      .map((event) => {
        const item = document.createElement('li');
        item.className = event.tone;
        for (const [name, text] of [
          ['at', `${event.at.toFixed(1)} s`],
          ['bdf', event.bdf],
          ['text', event.text],
        ] as const) {
          const part = document.createElement('span');
          part.className = name;
          part.textContent = text;
          item.append(part);
        }
        return item;
      }),
  );
}

void main();
