import type { Test } from 'tap';
import {
  type DataPlane,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Platform,
} from '../../machine/index.js';
import type { MappedBuffer } from '../../devices/drivers/driver-base.js';
import { NvmeDriver, type NvmeDriverOptions } from '../../devices/drivers/nvme-driver.js';
import { cqHeadDoorbell, NVME, sqTailDoorbell } from '../../devices/models/nvme.js';
import { buddy, mdlOf, ok, out, PAGE, platformFor, v2Of, ZERO_FLAGS } from './fixture.js';

/** Scaffolding of the NVMe tests: a controller with its driver, scattered buffers, and a controller driven through its registers alone. */

export const BLOCK = 512;

export async function nvmeWithDriver(t: Test, options: NvmeDriverOptions & { namespaceBytes?: number; memoryBytes?: number; dataPlane?: DataPlane } = {}) {
  const platform = await platformFor(t, {
    ...(options.dataPlane === 'main-thread' ? { dataPlane: 'main-thread', workers: 0 } : { workers: 2 }),
    memoryBytes: options.memoryBytes ?? 32 * 1024 * 1024,
  });
  const fn = platform.bus.addFunction({
    bus: 0,
    device: 5,
    function: 0,
    model: 'nvme',
    modelOptions: { namespaceBytes: options.namespaceBytes ?? 8 * 1024 * 1024 },
  });
  const { queueDepth, adminDepth, vector } = options;
  const driver = await new NvmeDriver(platform, fn, { queueDepth, adminDepth, vector }).start();
  return { platform, fn, driver };
}

/** `pages` guest pages in a scrambled physical order (seeded), mapped for the device as one logical range. */
export function scatteredBuffer(
  platform: Platform,
  driver: NvmeDriver,
  pages: number,
  random: () => number,
  access = IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE,
): MappedBuffer {
  const pfns = platform.memory.allocatePages(pages);
  for (let i = pfns.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pfns[i], pfns[j]] = [pfns[j]!, pfns[i]!];
  }
  return driver.mapBuffer(pfns, access);
}

/** Writes `data` into `buffer` at byte `offset` through the CPU's view (page by page). */
export function poke(platform: Platform, buffer: MappedBuffer, offset: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) {
    const at = offset + done;
    const chunk = Math.min(data.length - done, PAGE - (at % PAGE));
    platform.memory.write(buffer.physical(at), data.subarray(done, done + chunk));
    done += chunk;
  }
}

export function peek(platform: Platform, buffer: MappedBuffer, offset: number, length: number): Uint8Array {
  const result = new Uint8Array(length);
  for (let done = 0; done < length; ) {
    const at = offset + done;
    const chunk = Math.min(length - done, PAGE - (at % PAGE));
    result.set(platform.memory.read(buffer.physical(at), chunk), done);
    done += chunk;
  }
  return result;
}

/** Index of the first byte that differs, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

export function allEqual(bytes: Uint8Array, value: number): boolean {
  return bytes.every((b) => b === value);
}

/**
 * An 'nvme' function with no driver object: the test creates the DMA device and domain with
 * the V2 routines, maps one admin SQ page and one admin CQ page (or leaves the SQ unmapped),
 * programs AQA/ASQ/ACQ and enables the controller, then drives the doorbells itself.
 */
export async function rawController(t: Test, options: { sqEntries: number; cqEntries: number; mapSq?: boolean; dataPlane?: DataPlane }) {
  const platform = await platformFor(t, options.dataPlane === 'main-thread' ? { dataPlane: 'main-thread', workers: 0 } : { workers: 2 });
  const fn = platform.bus.addFunction({ bus: 0, device: 6, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 64 * 1024 } });
  const V2 = v2Of(platform);
  const device = out<IOMMU_DMA_DEVICE>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(), null, domain), 'CreateDomainEx');
  ok(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  const map = (pfn: number, access: number) => {
    const iova = out<number>();
    ok(V2.MapLogicalRangeEx(domain.value!, access, mdlOf(platform, [pfn]), null, null, null, iova), 'MapLogicalRangeEx');
    return iova.value!;
  };
  const [sqPfn, cqPfn] = platform.memory.allocatePages(2) as [number, number];
  platform.memory.fill(sqPfn * PAGE, PAGE, 0);
  platform.memory.fill(cqPfn * PAGE, PAGE, 0);
  const sqIova = options.mapSq === false ? 0x7000_0000 : map(sqPfn, IOMMU_ACCESS_READ);
  const cqIova = map(cqPfn, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE);
  const registers = fn.registers!;
  const vectors: number[] = [];
  fn.setInterruptHandler((vector) => vectors.push(vector));
  registers.write32(NVME.AQA, (options.sqEntries - 1) | ((options.cqEntries - 1) << 16));
  registers.write64(NVME.ASQ, sqIova);
  registers.write64(NVME.ACQ, cqIova);
  registers.write32(NVME.CC, NVME.CC_EN | (6 << NVME.CC_IOSQES_SHIFT) | (4 << NVME.CC_IOCQES_SHIFT));
  await platform.devicesIdle();
  return {
    platform,
    fn,
    registers,
    vectors,
    sqIova,
    /** Writes a whole admin command (CID `cid`) into SQ slot `index` (CPU view). */
    command(
      index: number,
      cid: number,
      fields: { opcode: number; nsid?: number; prp1?: number; prp2?: number; cdw10?: number; cdw11?: number; cdw12?: number },
    ): void {
      const at = sqPfn * PAGE + index * NVME.SQ_ENTRY_BYTES;
      platform.memory.fill(at, NVME.SQ_ENTRY_BYTES, 0);
      platform.memory.writeU32(at, (fields.opcode | (cid << 16)) >>> 0);
      platform.memory.writeU32(at + 4, fields.nsid ?? 0);
      platform.memory.writeU64(at + 24, fields.prp1 ?? 0);
      platform.memory.writeU64(at + 32, fields.prp2 ?? 0);
      platform.memory.writeU32(at + 40, fields.cdw10 ?? 0);
      platform.memory.writeU32(at + 44, fields.cdw11 ?? 0);
      platform.memory.writeU32(at + 48, fields.cdw12 ?? 0);
    },
    /** DW0 of completion entry `index`. */
    dw0: (index: number) => platform.memory.readU32(cqPfn * PAGE + index * NVME.CQ_ENTRY_BYTES),
    /** Writes an admin command with `opcode` and `cid` into SQ slot `index` (CPU view). */
    submit(index: number, opcode: number, cid: number): void {
      const at = sqPfn * PAGE + index * NVME.SQ_ENTRY_BYTES;
      platform.memory.fill(at, NVME.SQ_ENTRY_BYTES, 0);
      platform.memory.writeU32(at, (opcode | (cid << 16)) >>> 0);
    },
    ringSq: (tail: number) => registers.write32(sqTailDoorbell(0), tail),
    ringCq: (head: number) => registers.write32(cqHeadDoorbell(0), head),
    /** Completion entry `index` of the admin CQ: DW0, DW2, DW3 decoded. */
    completion(index: number) {
      const at = cqPfn * PAGE + index * NVME.CQ_ENTRY_BYTES;
      const dw2 = platform.memory.readU32(at + 8);
      const dw3 = platform.memory.readU32(at + 12);
      return { sqhd: dw2 & 0xffff, sqid: dw2 >>> 16, cid: dw3 & 0xffff, phase: (dw3 >>> 16) & 1, status: dw3 >>> 17 };
    },
  };
}
