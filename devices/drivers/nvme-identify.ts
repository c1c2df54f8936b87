import { TWO_32 } from '../../base/numbers.js';
import { NVME } from '../models/nvme.js';

/** The fields of the Identify data structures (NVMe 1.4, figures 245 and 251) the NVMe driver reads. */

export interface NvmeNamespaceIdentity {
  /** NSZE, NCAP, NUSE in logical blocks. */
  size: number;
  capacity: number;
  utilization: number;
  /** Formats (NLBAF + 1), and the bytes of a logical block of the format in use (2^LBADS). */
  formats: number;
  blockBytes: number;
  eui64: string;
}

export interface NvmeIdentity {
  vendorId: number;
  subsystemVendorId: number;
  serial: string;
  model: string;
  firmware: string;
  controllerId: number;
  /** VER, e.g. 0x00010400. */
  version: number;
  /** 2^MDTS pages of 4 KiB (Infinity when MDTS is 0: no limit). */
  maxTransferBytes: number;
  /** SQES and CQES: required (low nibble) and largest (high nibble) entry sizes, as powers of two. */
  sqes: number;
  cqes: number;
  maxCommands: number;
  /** NN: namespaces the controller may have. */
  namespaces: number;
  subsystemNqn: string;
  namespace: NvmeNamespaceIdentity;
}

export function parseControllerIdentity(page: Uint8Array): Omit<NvmeIdentity, 'namespace'> {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const mdts = page[77]!;
  return {
    vendorId: view.getUint16(0, true),
    subsystemVendorId: view.getUint16(2, true),
    serial: text(page, 4, 20),
    model: text(page, 24, 40),
    firmware: text(page, 64, 8),
    controllerId: view.getUint16(78, true),
    version: view.getUint32(80, true),
    maxTransferBytes: mdts === 0 ? Infinity : 2 ** mdts * NVME.PAGE,
    sqes: page[512]!,
    cqes: page[513]!,
    maxCommands: view.getUint16(514, true),
    namespaces: view.getUint32(516, true),
    subsystemNqn: text(page, 768, 256),
  };
}

export function parseNamespaceIdentity(page: Uint8Array): NvmeNamespaceIdentity {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const u64 = (offset: number) => view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO_32;
  const format = page[26]! & 0xf;
  const lbaf = view.getUint32(128 + 4 * format, true);
  return {
    size: u64(0),
    capacity: u64(8),
    utilization: u64(16),
    formats: page[25]! + 1,
    blockBytes: 2 ** ((lbaf >>> 16) & 0xff),
    eui64: Array.from(page.subarray(120, 128), (b) => b.toString(16).padStart(2, '0')).join(''),
  };
}

/** An ASCII field without its padding (spaces or NULs). */
function text(page: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...page.subarray(offset, offset + length)).replace(/[\s\0]+$/, '');
}
