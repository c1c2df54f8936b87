import type { RegisterFile } from '../../hardware/register-file.js';
import type { DeviceWorkContext } from '../device-model.js';
import { buildIdentify, buildLog, logBytes } from './nvme-pages.js';
import { returnData } from './nvme-prp.js';
import { cqHeadDoorbell, cqState, featureDefault, NVME as R, sqState, sqTailDoorbell } from './nvme-registers.js';
import type { NvmeScratch } from './nvme-scratch.js';

/**
 * The admin command set of the 'nvme' model (devices/models/nvme.ts): Identify, Get Log Page,
 * Set and Get Features, Abort, Asynchronous Event Request, and Create / Delete I/O Submission
 * and Completion Queue. Each returns the completion status (SC | SCT << 8, with DNR when
 * retrying cannot help) and leaves DW0 in the scratch, or HELD for a command that completes
 * later (an Asynchronous Event Request: never, since no event ever happens here).
 */

/** The command takes no completion now. */
export const HELD = -1;

const MAX_TRANSFER = (1 << R.MDTS) * R.PAGE;
/** Number of Queues allocated, zero-based in each half: every I/O queue identifier this controller decodes. */
const QUEUES_ALLOCATED = ((R.MAX_QUEUES - 2) | ((R.MAX_QUEUES - 2) << 16)) >>> 0;

export function executeAdmin(context: DeviceWorkContext<NvmeScratch>): number {
  const scratch = context.scratch;
  const registers = context.registers;
  if (scratch.unsupportedFlags) return R.SC_INVALID_FIELD | R.DNR;
  switch (scratch.opcode) {
    case R.ADMIN_IDENTIFY: {
      const status = buildIdentify(scratch, registers, context.slot);
      return status === R.SC_SUCCESS ? returnData(context.port, scratch, scratch.page, R.PAGE) : status | R.DNR;
    }
    case R.ADMIN_GET_LOG_PAGE:
      return getLogPage(context);
    case R.ADMIN_SET_FEATURES:
      return setFeatures(scratch, registers);
    case R.ADMIN_GET_FEATURES:
      return getFeatures(scratch, registers);
    case R.ADMIN_ABORT:
      // Commands complete within the batch that fetched them: by the time an Abort is fetched,
      // the command it names has completed or was never submitted. DW0 bit 0: not aborted.
      scratch.dw0 = 1;
      return R.SC_SUCCESS;
    case R.ADMIN_ASYNC_EVENT_REQUEST: {
      const outstanding = registers.read32(R.AERS_OUTSTANDING);
      if (outstanding > R.AERL) return R.SC_ASYNC_EVENT_LIMIT_EXCEEDED | R.DNR;
      registers.set32(R.AERS_OUTSTANDING, outstanding + 1);
      return HELD;
    }
    case R.ADMIN_CREATE_IO_CQ:
      return createCompletionQueue(scratch, registers);
    case R.ADMIN_CREATE_IO_SQ:
      return createSubmissionQueue(scratch, registers);
    case R.ADMIN_DELETE_IO_CQ:
      return deleteCompletionQueue(scratch, registers);
    case R.ADMIN_DELETE_IO_SQ:
      return deleteSubmissionQueue(scratch, registers);
    default:
      return R.SC_INVALID_OPCODE | R.DNR;
  }
}

/** Get Log Page: LID (CDW10 7:0), NUMD (CDW10 31:16 low, CDW11 15:0 high; zero-based dwords), offset LPOL/LPOU (CDW12/13). */
function getLogPage(context: DeviceWorkContext<NvmeScratch>): number {
  const scratch = context.scratch;
  const lid = scratch.dword(10) & 0xff;
  const size = logBytes(lid);
  if (size === 0) return R.SC_INVALID_LOG_PAGE | R.DNR;
  const bytes = ((scratch.dword(10) >>> 16) + (scratch.dword(11) & 0xffff) * 65536 + 1) * 4;
  const offset = scratch.dword(12) + scratch.dword(13) * 2 ** 32;
  if (bytes > MAX_TRANSFER || offset % 4 !== 0 || offset >= size) return R.SC_INVALID_FIELD | R.DNR;
  buildLog(scratch, context.registers, lid);
  // The log from `offset`, then zeros up to the length asked for.
  const data = scratch.zeroed(bytes);
  data.set(scratch.page.subarray(offset, Math.min(size, offset + bytes)));
  return returnData(context.port, scratch, data, bytes);
}

/** Set Features: FID (CDW10 7:0), SV (CDW10 31; nothing is saveable), the value in CDW11. */
function setFeatures(scratch: NvmeScratch, registers: RegisterFile): number {
  const fid = scratch.dword(10) & 0xff;
  const value = scratch.dword(11);
  if (scratch.dword(10) >>> 31 !== 0) return R.SC_FEATURE_NOT_SAVEABLE | R.DNR;
  switch (fid) {
    case R.FEATURE_NUMBER_OF_QUEUES: {
      // NSQR and NCQR (zero-based) may not be 65535; the answer is what this controller allocates.
      if ((value & 0xffff) === 0xffff || value >>> 16 === 0xffff) return R.SC_INVALID_FIELD | R.DNR;
      for (let qid = 1; qid < R.MAX_QUEUES; qid++) {
        if (registers.read32(sqState(qid) + R.Q_ENTRIES) !== 0 || registers.read32(cqState(qid) + R.Q_ENTRIES) !== 0) {
          return R.SC_COMMAND_SEQUENCE_ERROR | R.DNR;
        }
      }
      scratch.dw0 = QUEUES_ALLOCATED;
      return R.SC_SUCCESS;
    }
    case R.FEATURE_POWER_MANAGEMENT:
      if ((value & 0x1f) !== 0) return R.SC_INVALID_FIELD | R.DNR; // PS: power state 0 is the only one
      break;
    case R.FEATURE_TEMPERATURE_THRESHOLD: {
      const at = temperatureRegister(value);
      if (at < 0) return R.SC_INVALID_FIELD | R.DNR;
      registers.set32(at, value & 0xffff);
      return R.SC_SUCCESS;
    }
    case R.FEATURE_ERROR_RECOVERY:
      if ((value & 0x10000) !== 0) return R.SC_INVALID_FIELD | R.DNR; // DULBE: no deallocated blocks here
      break;
    case R.FEATURE_INTERRUPT_VECTOR_CONFIGURATION: {
      const vector = value & 0xffff;
      if (vector >= R.MAX_VECTORS) return R.SC_INVALID_FIELD | R.DNR;
      registers.set32(R.VECTOR_CONFIGURATION + 4 * vector, value & 0x1ffff);
      return R.SC_SUCCESS;
    }
    case R.FEATURE_ARBITRATION:
    case R.FEATURE_VOLATILE_WRITE_CACHE:
    case R.FEATURE_INTERRUPT_COALESCING:
    case R.FEATURE_WRITE_ATOMICITY_NORMAL:
    case R.FEATURE_ASYNC_EVENT_CONFIGURATION:
      break;
    default:
      // LBA Range Type, APST, HMB, Timestamp, Keep Alive and the rest: not supported.
      return R.SC_INVALID_FIELD | R.DNR;
  }
  registers.set32(R.FEATURES + 4 * fid, value);
  return R.SC_SUCCESS;
}

/** Get Features: FID (CDW10 7:0), SEL (CDW10 10:8: 0 current, 1 default, 2 saved, 3 supported capabilities). */
function getFeatures(scratch: NvmeScratch, registers: RegisterFile): number {
  const fid = scratch.dword(10) & 0xff;
  const select = (scratch.dword(10) >>> 8) & 7;
  const value = scratch.dword(11);
  const supported =
    fid === R.FEATURE_ARBITRATION ||
    fid === R.FEATURE_POWER_MANAGEMENT ||
    fid === R.FEATURE_TEMPERATURE_THRESHOLD ||
    fid === R.FEATURE_ERROR_RECOVERY ||
    fid === R.FEATURE_VOLATILE_WRITE_CACHE ||
    fid === R.FEATURE_NUMBER_OF_QUEUES ||
    fid === R.FEATURE_INTERRUPT_COALESCING ||
    fid === R.FEATURE_INTERRUPT_VECTOR_CONFIGURATION ||
    fid === R.FEATURE_WRITE_ATOMICITY_NORMAL ||
    fid === R.FEATURE_ASYNC_EVENT_CONFIGURATION;
  if (!supported || select > 3) return R.SC_INVALID_FIELD | R.DNR;
  if (select === 3) {
    scratch.dw0 = 0x4; // changeable, not saveable, not namespace specific
    return R.SC_SUCCESS;
  }
  // Nothing is saveable, so the saved value is the default (SEL 2 answers like SEL 1).
  const current = select === 0;
  if (fid === R.FEATURE_NUMBER_OF_QUEUES) {
    scratch.dw0 = QUEUES_ALLOCATED;
  } else if (fid === R.FEATURE_TEMPERATURE_THRESHOLD) {
    const at = temperatureRegister(value);
    if (at < 0) return R.SC_INVALID_FIELD | R.DNR;
    scratch.dw0 = current ? registers.read32(at) : at === R.UNDER_TEMPERATURE ? 0 : R.WCTEMP;
  } else if (fid === R.FEATURE_INTERRUPT_VECTOR_CONFIGURATION) {
    const vector = value & 0xffff;
    if (vector >= R.MAX_VECTORS) return R.SC_INVALID_FIELD | R.DNR;
    scratch.dw0 = current ? registers.read32(R.VECTOR_CONFIGURATION + 4 * vector) : vector;
  } else {
    scratch.dw0 = current ? registers.read32(R.FEATURES + 4 * fid) : featureDefault(fid);
  }
  return R.SC_SUCCESS;
}

/** The register holding the threshold CDW11 names (TMPSEL 19:16 must be 0, the composite; THSEL 21:20 over or under), or -1. */
function temperatureRegister(cdw11: number): number {
  const sensor = (cdw11 >>> 16) & 0xf;
  const kind = (cdw11 >>> 20) & 0x3;
  if (sensor !== 0 || kind > 1) return -1;
  return kind === 0 ? R.FEATURES + 4 * R.FEATURE_TEMPERATURE_THRESHOLD : R.UNDER_TEMPERATURE;
}

/** QID in CDW10 bits 15:0 names an I/O queue slot (1 .. MAX_QUEUES - 1). */
function ioQueueId(scratch: NvmeScratch): number {
  const qid = scratch.dword(10) & 0xffff;
  return qid >= 1 && qid < R.MAX_QUEUES ? qid : -1;
}

/** QSIZE (CDW10 bits 31:16, zero-based) if valid (2 .. MQES + 1 entries), else -1. */
function queueEntries(scratch: NvmeScratch): number {
  const qsize = scratch.dword(10) >>> 16;
  return qsize >= 1 && qsize <= R.MQES ? qsize + 1 : -1;
}

function createCompletionQueue(scratch: NvmeScratch, registers: RegisterFile): number {
  const qid = ioQueueId(scratch);
  if (qid < 0 || registers.read32(cqState(qid) + R.Q_ENTRIES) !== 0) return R.SC_INVALID_QUEUE_IDENTIFIER | R.DNR;
  const entries = queueEntries(scratch);
  if (entries < 0) return R.SC_INVALID_QUEUE_SIZE | R.DNR;
  const cdw11 = scratch.dword(11);
  if ((cdw11 & 1) === 0) return R.SC_INVALID_FIELD | R.DNR; // PC: CAP.CQR says queues must be contiguous
  const vector = cdw11 >>> 16;
  if (vector >= R.MAX_VECTORS) return R.SC_INVALID_INTERRUPT_VECTOR | R.DNR;
  const base = scratch.prp1;
  if (base % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET | R.DNR;
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

function createSubmissionQueue(scratch: NvmeScratch, registers: RegisterFile): number {
  const qid = ioQueueId(scratch);
  if (qid < 0 || registers.read32(sqState(qid) + R.Q_ENTRIES) !== 0) return R.SC_INVALID_QUEUE_IDENTIFIER | R.DNR;
  const entries = queueEntries(scratch);
  if (entries < 0) return R.SC_INVALID_QUEUE_SIZE | R.DNR;
  const cdw11 = scratch.dword(11);
  const cqid = cdw11 >>> 16;
  if (cqid === 0 || cqid >= R.MAX_QUEUES || registers.read32(cqState(cqid) + R.Q_ENTRIES) === 0) return R.SC_COMPLETION_QUEUE_INVALID | R.DNR;
  if ((cdw11 & 1) === 0) return R.SC_INVALID_FIELD | R.DNR;
  const base = scratch.prp1;
  if (base % R.PAGE !== 0) return R.SC_INVALID_PRP_OFFSET | R.DNR;
  const sq = sqState(qid);
  registers.set64(sq + R.Q_BASE, base);
  registers.set32(sq + R.Q_INDEX, 0);
  registers.set32(sq + R.Q_LINK, cqid);
  registers.set32(sqTailDoorbell(qid), 0);
  registers.set32(sq + R.Q_ENTRIES, entries);
  return R.SC_SUCCESS;
}

function deleteSubmissionQueue(scratch: NvmeScratch, registers: RegisterFile): number {
  const qid = ioQueueId(scratch);
  if (qid < 0 || registers.read32(sqState(qid) + R.Q_ENTRIES) === 0) return R.SC_INVALID_QUEUE_IDENTIFIER | R.DNR;
  clearQueue(registers, sqState(qid));
  registers.set32(sqTailDoorbell(qid), 0);
  return R.SC_SUCCESS;
}

function deleteCompletionQueue(scratch: NvmeScratch, registers: RegisterFile): number {
  const qid = ioQueueId(scratch);
  if (qid < 0 || registers.read32(cqState(qid) + R.Q_ENTRIES) === 0) return R.SC_INVALID_QUEUE_IDENTIFIER | R.DNR;
  for (let sqid = 1; sqid < R.MAX_QUEUES; sqid++) {
    const sq = sqState(sqid);
    if (registers.read32(sq + R.Q_ENTRIES) !== 0 && registers.read32(sq + R.Q_LINK) === qid) return R.SC_INVALID_QUEUE_DELETION | R.DNR;
  }
  clearQueue(registers, cqState(qid));
  registers.set32(cqHeadDoorbell(qid), 0);
  return R.SC_SUCCESS;
}

function clearQueue(registers: RegisterFile, record: number): void {
  for (let word = 0; word < R.QUEUE_STATE_BYTES; word += 4) registers.set32(record + word, 0);
}
