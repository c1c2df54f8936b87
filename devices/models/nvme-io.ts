import type { DeviceWorkContext } from '../device-model.js';
import { copyFromHost, copyToHost, finish, walkPrps } from './nvme-prp.js';
import { NVME as R } from './nvme-registers.js';
import type { NvmeScratch } from './nvme-scratch.js';

const MAX_TRANSFER = (1 << R.MDTS) * R.PAGE;
const TWO_32 = 2 ** 32;

/**
 * The NVM command set of the 'nvme' model on namespace 1: Flush, Write, Read. SLBA in
 * CDW10/11, NLB zero-based in CDW12 (15:0). Returns the completion status (DNR on every
 * error but a Data Transfer Error, which a retry may get past once the IOMMU lets it).
 */
export function executeIo(context: DeviceWorkContext<NvmeScratch>): number {
  const scratch = context.scratch;
  const opcode = scratch.opcode;
  if (opcode !== R.IO_FLUSH && opcode !== R.IO_WRITE && opcode !== R.IO_READ) return R.SC_INVALID_OPCODE | R.DNR;
  if (scratch.unsupportedFlags) return R.SC_INVALID_FIELD | R.DNR;
  const nsid = scratch.dword(1);
  // Writes reach the namespace (RAM) before they complete: the volatile write cache never holds
  // anything, so Flush has nothing to do (broadcast NSID allowed).
  if (opcode === R.IO_FLUSH) return nsid === 1 || nsid === 0xffff_ffff ? R.SC_SUCCESS : R.SC_INVALID_NAMESPACE | R.DNR;
  if (nsid !== 1) return R.SC_INVALID_NAMESPACE | R.DNR;
  const registers = context.registers;
  const slba = scratch.dword(10) + scratch.dword(11) * TWO_32;
  const blocks = (scratch.dword(12) & 0xffff) + 1;
  if (slba + blocks > registers.read32(R.NAMESPACE_BLOCKS)) return R.SC_LBA_OUT_OF_RANGE | R.DNR;
  const bytes = blocks * R.LBA_BYTES;
  if (bytes > MAX_TRANSFER) return R.SC_INVALID_FIELD | R.DNR;
  const port = context.port;
  let status = walkPrps(port, scratch, scratch.prp1, scratch.prp2, bytes);
  if (status === R.SC_SUCCESS) {
    const at = slba * R.LBA_BYTES;
    const media = context.privateMemory;
    status = opcode === R.IO_READ ? copyToHost(port, scratch, media, at) : copyFromHost(port, scratch, media, at, bytes);
  }
  if (status === R.SC_SUCCESS) count(context, opcode === R.IO_READ, blocks);
  return finish(scratch, status, bytes);
}

/** The SMART log's counters: commands and blocks. */
function count(context: DeviceWorkContext<NvmeScratch>, read: boolean, blocks: number): void {
  const registers = context.registers;
  const commands = read ? R.READ_COMMANDS : R.WRITE_COMMANDS;
  const total = read ? R.BLOCKS_READ : R.BLOCKS_WRITTEN;
  registers.set32(commands, (registers.read32(commands) + 1) | 0);
  registers.set64(total, registers.read64(total) + blocks);
}
