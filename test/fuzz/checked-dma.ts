import { Divergence, expectEqual } from './checks.js';
import { type Model, PAGE, READ, WRITE } from './model.js';
import { MEMORY_PAGES, type World } from './world.js';

/**
 * One DMA by function `fnIndex` through the platform's worker, checked against the model:
 * the fault (type, and the record its handler gets) or the exact bytes moved, read back
 * through the CPU's view of the frames the model names. Updates the model's fault counts.
 */
export async function checkedDma(m: Model, w: World, fnIndex: number, address: number, length: number, wantWrite: boolean, what: string): Promise<void> {
  const fn = w.functions[fnIndex]!;
  const f = m.functions[fnIndex]!;
  const device = [...m.devices.values()].find((d) => d.fn === fnIndex);
  const domain = device?.domain === null || device === undefined ? undefined : m.domains.get(device.domain);
  const first = Math.floor(address / PAGE);
  // What the model says each touched page gives: a frame, or the first fault.
  let fault: { type: number; address: number } | null = null;
  const frames: number[] = [];
  // Pages counted exactly: near 2^53 a float sum of address and length rounds.
  const pages = Math.floor(((address % PAGE) + length - 1) / PAGE) + 1;
  for (let p = first; p < first + pages; p++) {
    let result: { frame: number; perm: number } | { fault: number };
    if (!f.behindIommu) result = p < MEMORY_PAGES ? { frame: p, perm: READ | WRITE } : { fault: 1 };
    else if (domain === undefined) result = { fault: 0 };
    else result = m.translate(domain, p);
    if ('frame' in result && (result.perm & (wantWrite ? WRITE : READ)) === 0) result = { fault: 4 };
    if ('fault' in result) {
      fault = { type: result.fault, address: p === first ? address : p * PAGE };
      break;
    }
    frames.push(result.frame);
  }
  // Never write over the all-invalid table page unmanaged domains use.
  const write = wantWrite && !frames.includes(w.ttbrPage);
  const data = Uint8Array.from({ length }, (_, i) => (address * 31 + i * 7) & 0xff);
  const result = await w.platform.dma(fn, write ? { address, write: data } : { address, length });
  if (fault !== null) {
    expectEqual({ ok: result.ok, faultType: result.ok ? undefined : result.faultType }, { ok: false, faultType: fault.type }, what);
    if (f.behindIommu) {
      m.raised++;
      if (device?.reporting) {
        m.delivered++;
        m.expectedFaults.push({ device: device.id, address: fault.address, type: fault.type, write, domain: domain?.id ?? null });
      } else m.suppressed++;
    }
    return;
  }
  if (!result.ok) throw new Divergence(`${what}: faulted with type ${result.faultType}; the model expects success`);
  // The bytes moved are those at the frames the model names.
  const offset = address % PAGE;
  const physical = (i: number) => frames[Math.floor((offset + i) / PAGE)]! * PAGE + ((offset + i) % PAGE);
  const actual = Array.from({ length }, (_, i) => w.platform.memory.read(physical(i), 1)[0]);
  if (write) expectEqual(actual, Array.from(data), `${what}: bytes written`);
  else expectEqual(Array.from(result.data ?? []), actual, `${what}: bytes read`);
}
