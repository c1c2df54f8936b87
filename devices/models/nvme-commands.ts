import type { DeviceWorkContext } from '../device-model.js';
import type { RegisterFile } from '../../hardware/register-file.js';
import { copyFromHost, copyToHost, transfer, walkPrps } from './nvme-prp.js';
import { cqHeadDoorbell, cqState, NVME as R, sqState, sqTailDoorbell } from './nvme-registers.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

/**
 * The commands of the 'nvme' model (devices/models/nvme.ts): the admin command set it
 * implements (Identify, Create/Delete I/O Submission and Completion Queue) and the NVM
 * command set on namespace 1 (Flush, Write, Read). Each returns the completion status
 * (SC | SCT << 8) and leaves the completion's DW0 and the bytes it moved in `outcome`.
 */

/** The submission queue entry being executed (the queue engine reads it here). */
export const command = new Uint8Array(R.SQ_ENTRY_BYTES);
const view = new DataView(command.buffer);
/** Completion DW0 (command specific; the fault type for SC_DATA_TRANSFER_ERROR) and data bytes moved. */
export const outcome = { dw0: 0, bytes: 0 };
const identifyPage = new Uint8Array(R.PAGE);
const identifyView = new DataView(identifyPage.buffer);
const MAX_TRANSFER = (1 << R.MDTS) * R.PAGE;
const TWO_32 = 2 ** 32;

/** Command dword `n` (CDW0, NSID = 1, ..., CDW10 = 10, ...). */
export function dword(n: number): number {
  return view.getUint32(4 * n, true);
}

function prp1(): number {
  return dword(6) + dword(7) * TWO_32;
}

function prp2(): number {
  return dword(8) + dword(9) * TWO_32;
}

/** FUSE (CDW0 bits 9:8) and PSDT (bits 15:14): this controller does neither fused operations nor SGLs. */
function unsupportedFlags(): boolean {
  return (dword(0) & 0xc300) !== 0;
}

function failedTransfer(status: number): number {
  if (status === R.SC_DATA_TRANSFER_ERROR) outcome.dw0 = transfer.fault >>> 0;
  return status;
}

export function executeAdmin(context: DeviceWorkContext): number {
  outcome.dw0 = 0;
  outcome.bytes = 0;
  const opcode = dword(0) & 0xff;
  const known =
    opcode === R.ADMIN_IDENTIFY ||
    opcode === R.ADMIN_CREATE_IO_CQ ||
    opcode === R.ADMIN_CREATE_IO_SQ ||
    opcode === R.ADMIN_DELETE_IO_CQ ||
    opcode === R.ADMIN_DELETE_IO_SQ;
  if (!known) return R.SC_INVALID_OPCODE;
  if (unsupportedFlags()) return R.SC_INVALID_FIELD;
  const registers = context.registers;
  switch (opcode) {
    case R.ADMIN_IDENTIFY:
      return identify(context);
    case R.ADMIN_CREATE_IO_CQ:
      return createCompletionQueue(registers);
    case R.ADMIN_CREATE_IO_SQ:
      return createSubmissionQueue(registers);
    case R.ADMIN_DELETE_IO_CQ:
      return deleteCompletionQueue(registers);
    default:
      return deleteSubmissionQueue(registers);
  }
}

export function executeIo(context: DeviceWorkContext): number {
  outcome.dw0 = 0;
  outcome.bytes = 0;
  const opcode = dword(0) & 0xff;
  if (opcode !== R.IO_FLUSH && opcode !== R.IO_WRITE && opcode !== R.IO_READ) return R.SC_INVALID_OPCODE;
  if (unsupportedFlags()) return R.SC_INVALID_FIELD;
  const nsid = dword(1);
  // The namespace is RAM: nothing is cached, so Flush has nothing to do (broadcast NSID allowed).
  if (opcode === R.IO_FLUSH) return nsid === 1 || nsid === 0xffff_ffff ? R.SC_SUCCESS : R.SC_INVALID_NAMESPACE;
  if (nsid !== 1) return R.SC_INVALID_NAMESPACE;
  const slba = dword(10) + dword(11) * TWO_32;
  const blocks = (dword(12) & 0xffff) + 1;
  if (slba + blocks > context.registers.read32(R.NAMESPACE_BLOCKS)) return R.SC_LBA_OUT_OF_RANGE;
  const bytes = blocks * R.LBA_BYTES;
  if (bytes > MAX_TRANSFER) return R.SC_INVALID_FIELD;
  const port = context.port;
  const status = walkPrps(port, prp1(), prp2(), bytes);
  if (status !== R.SC_SUCCESS) return failedTransfer(status);
  outcome.bytes = bytes;
  const media = context.privateMemory;
  const at = slba * R.LBA_BYTES;
  return failedTransfer(opcode === R.IO_READ ? copyToHost(port, media, at) : copyFromHost(port, media, at, bytes));
}

function identify(context: DeviceWorkContext): number {
  const cns = dword(10) & 0xff;
  const page = identifyPage;
  page.fill(0);
  const data = identifyView;
  if (cns === R.CNS_CONTROLLER) {
    const serial = `VIOMMU-NVME-${context.slot.toString(16).padStart(4, '0')}`;
    data.setUint16(0, VIOMMU_VENDOR_ID, true); // VID
    data.setUint16(2, VIOMMU_VENDOR_ID, true); // SSVID
    ascii(page, 4, 20, serial); // SN
    ascii(page, 24, 40, 'viommu NVMe-like controller'); // MN
    ascii(page, 64, 8, '1.0'); // FR
    page[72] = 0; // RAB
    page[77] = R.MDTS;
    data.setUint16(78, 1, true); // CNTLID
    data.setUint32(80, R.VERSION, true); // VER
    page[111] = 1; // CNTRLTYPE: I/O controller
    page[258] = 3; // ACL (zero-based)
    page[512] = 0x66; // SQES: 64-byte entries
    page[513] = 0x44; // CQES: 16-byte entries
    data.setUint16(514, R.MQES + 1, true); // MAXCMD
    data.setUint32(516, 1, true); // NN
    ascii(page, 768, 256, `nqn.2024-01.org.viommu:nvme:${serial}`, 0); // SUBNQN
  } else if (cns === R.CNS_NAMESPACE) {
    if (dword(1) !== 1) return R.SC_INVALID_NAMESPACE;
    const blocks = context.registers.read32(R.NAMESPACE_BLOCKS);
    data.setUint32(0, blocks, true); // NSZE
    data.setUint32(8, blocks, true); // NCAP
    data.setUint32(16, blocks, true); // NUSE
    page[25] = 0; // NLBAF: one format (zero-based)
    page[26] = 0; // FLBAS: format 0
    data.setUint32(120, 0x7e57_0000 + context.slot, false); // EUI64 (high half)
    data.setUint32(124, 1, false);
    data.setUint32(128, 9 << 16, true); // LBAF0: MS 0, LBADS 9 (512 bytes), RP 0
  } else if (cns === R.CNS_ACTIVE_NAMESPACES) {
    if (dword(1) < 1) data.setUint32(0, 1, true);
  } else {
    return R.SC_INVALID_FIELD;
  }
  const status = walkPrps(context.port, prp1(), prp2(), R.PAGE);
  if (status !== R.SC_SUCCESS) return failedTransfer(status);
  outcome.bytes = R.PAGE;
  return failedTransfer(copyToHost(context.port, page, 0));
}

/** An ASCII field padded with `pad` (spaces, as the spec wants for SN/MN/FR; 0 for NQNs). */
function ascii(page: Uint8Array, offset: number, length: number, text: string, pad = 0x20): void {
  for (let i = 0; i < length; i++) page[offset + i] = i < text.length ? text.charCodeAt(i) & 0x7f : pad;
}

/** QID in CDW10 bits 15:0 names an I/O queue slot (1 .. MAX_QUEUES - 1). */
function ioQueueId(): number {
  const qid = dword(10) & 0xffff;
  return qid >= 1 && qid < R.MAX_QUEUES ? qid : -1;
}

/** QSIZE (CDW10 bits 31:16, zero-based) if valid (2 .. MQES + 1 entries), else -1. */
function queueEntries(): number {
  const qsize = dword(10) >>> 16;
  return qsize >= 1 && qsize <= R.MQES ? qsize + 1 : -1;
}

function createCompletionQueue(registers: RegisterFile): number {
  const qid = ioQueueId();
  if (qid < 0 || registers.read32(cqState(qid) + R.Q_ENTRIES) !== 0) return R.SC_INVALID_QUEUE_IDENTIFIER;
  const entries = queueEntries();
  if (entries < 0) return R.SC_INVALID_QUEUE_SIZE;
  const cdw11 = dword(11);
  if ((cdw11 & 1) === 0) return R.SC_INVALID_FIELD; // PC: CAP.CQR says queues must be contiguous
  const vector = cdw11 >>> 16;
  if (vector >= R.MAX_VECTORS) return R.SC_INVALID_INTERRUPT_VECTOR;
  const base = prp1();
  if (base % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET;
  const cq = cqState(qid);
  registers.set64(cq + R.Q_BASE, base);
  registers.set32(cq + R.Q_INDEX, 0);
  registers.set32(cq + R.Q_LINK, 1); // the first pass posts phase tag 1
  registers.set32(cq + R.Q_VECTOR, vector);
  registers.set32(cq + R.Q_FLAGS, (cdw11 >>> 1) & 1); // IEN
  registers.set32(cqHeadDoorbell(qid), 0);
  registers.set32(cq + R.Q_ENTRIES, entries);
  return R.SC_SUCCESS;
}

function createSubmissionQueue(registers: RegisterFile): number {
  const qid = ioQueueId();
  if (qid < 0 || registers.read32(sqState(qid) + R.Q_ENTRIES) !== 0) return R.SC_INVALID_QUEUE_IDENTIFIER;
  const entries = queueEntries();
  if (entries < 0) return R.SC_INVALID_QUEUE_SIZE;
  const cdw11 = dword(11);
  const cqid = cdw11 >>> 16;
  if (cqid === 0 || cqid >= R.MAX_QUEUES || registers.read32(cqState(cqid) + R.Q_ENTRIES) === 0) return R.SC_COMPLETION_QUEUE_INVALID;
  if ((cdw11 & 1) === 0) return R.SC_INVALID_FIELD;
  const base = prp1();
  if (base % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET;
  const sq = sqState(qid);
  registers.set64(sq + R.Q_BASE, base);
  registers.set32(sq + R.Q_INDEX, 0);
  registers.set32(sq + R.Q_LINK, cqid);
  registers.set32(sqTailDoorbell(qid), 0);
  registers.set32(sq + R.Q_ENTRIES, entries);
  return R.SC_SUCCESS;
}

function deleteSubmissionQueue(registers: RegisterFile): number {
  const qid = ioQueueId();
  if (qid < 0 || registers.read32(sqState(qid) + R.Q_ENTRIES) === 0) return R.SC_INVALID_QUEUE_IDENTIFIER;
  clearQueue(registers, sqState(qid));
  registers.set32(sqTailDoorbell(qid), 0);
  return R.SC_SUCCESS;
}

function deleteCompletionQueue(registers: RegisterFile): number {
  const qid = ioQueueId();
  if (qid < 0 || registers.read32(cqState(qid) + R.Q_ENTRIES) === 0) return R.SC_INVALID_QUEUE_IDENTIFIER;
  for (let sqid = 1; sqid < R.MAX_QUEUES; sqid++) {
    const sq = sqState(sqid);
    if (registers.read32(sq + R.Q_ENTRIES) !== 0 && registers.read32(sq + R.Q_LINK) === qid) return R.SC_INVALID_QUEUE_DELETION;
  }
  clearQueue(registers, cqState(qid));
  registers.set32(cqHeadDoorbell(qid), 0);
  return R.SC_SUCCESS;
}

function clearQueue(registers: RegisterFile, record: number): void {
  for (let word = 0; word < R.QUEUE_STATE_BYTES; word += 4) registers.set32(record + word, 0);
}
