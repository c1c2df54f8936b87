import { checkedDma } from './checked-dma.js';
import { type Model, PAGE, Translate } from './model.js';
import type { World } from './world.js';

/**
 * After every command, a sample of the data plane through worker DMA: for each Translate
 * domain with a device attached, a read of its latest unmapped page (a worker must never use
 * the old translation, however recently it cached it) and of one page it holds (chosen by
 * step number, so the IOTLB keeps filling with translations a later unmap must kill).
 */
export async function sampleDataPlane(m: Model, w: World): Promise<void> {
  for (const domain of m.domains.values()) {
    if (domain.type !== Translate || domain.devices.size === 0) continue;
    const device = m.devices.get(domain.devices.values().next().value!)!;
    const revoked = m.lastRevoked.get(domain.id);
    if (revoked !== undefined)
      await checkedDma(m, w, device.fn, revoked * PAGE + 8, 4, false, `sample: read of unmapped page 0x${revoked.toString(16)} of domain ${domain.id}`);
    const held = [...domain.pages.keys()].filter((p) => p < domain.spacePages);
    if (held.length > 0) {
      const page = held[w.steps % held.length]!;
      await checkedDma(m, w, device.fn, page * PAGE + 16, 4, false, `sample: read of page 0x${page.toString(16)} of domain ${domain.id}`);
    }
  }
}
