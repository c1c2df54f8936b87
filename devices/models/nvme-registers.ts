import type { RegisterFile } from '../../hardware/register-file.js';

/**
 * Register layout, field encodings and status codes of the 'nvme' model (devices/models/nvme.ts
 * documents the device). Names follow NVM Express 1.4: CAP, VS, INTMS, INTMC, CC, CSTS, AQA,
 * ASQ, ACQ, SQyTDBL and CQyHDBL are the spec's; everything from STATE up is this model's own
 * controller-internal state, kept in the register file because a device's state may not live
 * in a worker (any worker runs the next batch). Drivers may write the spec's writable
 * registers only (nvmeRegisterWritable): a write anywhere else is dropped, as on hardware.
 */
export const NVME = Object.freeze({
  // Controller registers (NVMe 1.4, 3.1).
  CAP: 0x00,
  VS: 0x08,
  INTMS: 0x0c,
  INTMC: 0x10,
  CC: 0x14,
  CSTS: 0x1c,
  AQA: 0x24,
  ASQ: 0x28,
  ACQ: 0x30,
  DOORBELLS: 0x1000,
  /** Queue identifiers 0 (admin) .. MAX_QUEUES - 1; doorbells of the others are not decoded. */
  MAX_QUEUES: 32,
  /** Interrupt vectors a completion queue may name (IV 0..MAX_VECTORS - 1; INTMS bit n masks vector n). */
  MAX_VECTORS: 32,

  VERSION: 0x0001_0400,
  /** CAP.MQES: the largest queue, zero-based. */
  MQES: 4095,
  /** CAP.TO in 500 ms units. */
  TIMEOUT: 0x14,

  CC_EN: 0x1,
  CC_CSS_SHIFT: 4,
  CC_MPS_SHIFT: 7,
  CC_AMS_SHIFT: 11,
  CC_SHN_SHIFT: 14,
  CC_SHN_NORMAL: 1 << 14,
  CC_IOSQES_SHIFT: 16,
  CC_IOCQES_SHIFT: 20,
  CSTS_RDY: 0x1,
  CSTS_CFS: 0x2,
  CSTS_SHST_SHIFT: 2,
  CSTS_SHST_MASK: 0xc,
  CSTS_SHST_COMPLETE: 0x8,

  // Queue entries.
  SQ_ENTRY_BYTES: 64,
  CQ_ENTRY_BYTES: 16,
  PAGE: 4096,
  LBA_BYTES: 512,
  /** Identify Controller MDTS: transfers up to 2^MDTS pages (4 MiB). */
  MDTS: 10,

  // Admin opcodes.
  ADMIN_DELETE_IO_SQ: 0x00,
  ADMIN_CREATE_IO_SQ: 0x01,
  ADMIN_GET_LOG_PAGE: 0x02,
  ADMIN_DELETE_IO_CQ: 0x04,
  ADMIN_CREATE_IO_CQ: 0x05,
  ADMIN_IDENTIFY: 0x06,
  ADMIN_ABORT: 0x08,
  ADMIN_SET_FEATURES: 0x09,
  ADMIN_GET_FEATURES: 0x0a,
  ADMIN_ASYNC_EVENT_REQUEST: 0x0c,
  // NVM command set opcodes.
  IO_FLUSH: 0x00,
  IO_WRITE: 0x01,
  IO_READ: 0x02,
  // Identify CNS values.
  CNS_NAMESPACE: 0x00,
  CNS_CONTROLLER: 0x01,
  CNS_ACTIVE_NAMESPACES: 0x02,
  CNS_NAMESPACE_DESCRIPTORS: 0x03,
  // Feature identifiers (Set/Get Features).
  FEATURE_ARBITRATION: 0x01,
  FEATURE_POWER_MANAGEMENT: 0x02,
  FEATURE_TEMPERATURE_THRESHOLD: 0x04,
  FEATURE_ERROR_RECOVERY: 0x05,
  FEATURE_VOLATILE_WRITE_CACHE: 0x06,
  FEATURE_NUMBER_OF_QUEUES: 0x07,
  FEATURE_INTERRUPT_COALESCING: 0x08,
  FEATURE_INTERRUPT_VECTOR_CONFIGURATION: 0x09,
  FEATURE_WRITE_ATOMICITY_NORMAL: 0x0a,
  FEATURE_ASYNC_EVENT_CONFIGURATION: 0x0b,
  // Log page identifiers (Get Log Page).
  LOG_ERROR_INFORMATION: 0x01,
  LOG_SMART_HEALTH: 0x02,
  LOG_FIRMWARE_SLOT: 0x03,

  // Identify Controller values a driver acts on.
  /** OAES: namespace attribute notices (so drivers configure and send Asynchronous Event Requests). */
  OAES: 0x100,
  /** ACL and AERL, zero-based: 4 Aborts and 4 Asynchronous Event Requests outstanding. */
  ACL: 3,
  AERL: 3,
  /** Composite temperature reported (313 K, 40 degrees C), warning and critical thresholds (WCTEMP, CCTEMP). */
  TEMPERATURE_KELVIN: 313,
  WCTEMP: 343,
  CCTEMP: 358,

  // Status (SC | SCT << 8, as in completion DW3 bits 31:17), and the Do Not Retry bit (status bit 14).
  SC_SUCCESS: 0x00,
  SC_INVALID_OPCODE: 0x01,
  SC_INVALID_FIELD: 0x02,
  SC_DATA_TRANSFER_ERROR: 0x04,
  SC_INVALID_NAMESPACE: 0x0b,
  SC_COMMAND_SEQUENCE_ERROR: 0x0c,
  SC_INVALID_PRP_OFFSET: 0x13,
  SC_LBA_OUT_OF_RANGE: 0x80,
  SC_COMPLETION_QUEUE_INVALID: 0x100,
  SC_INVALID_QUEUE_IDENTIFIER: 0x101,
  SC_INVALID_QUEUE_SIZE: 0x102,
  SC_ASYNC_EVENT_LIMIT_EXCEEDED: 0x105,
  SC_INVALID_INTERRUPT_VECTOR: 0x108,
  SC_INVALID_LOG_PAGE: 0x109,
  SC_INVALID_QUEUE_DELETION: 0x10c,
  SC_FEATURE_NOT_SAVEABLE: 0x10d,
  DNR: 0x4000,

  // Controller-internal state (this model's; read-only to drivers).
  STATE: 0x2000,
  /** SQ y record at SQ_STATE + y * QUEUE_STATE_BYTES; CQ y record at CQ_STATE + y * QUEUE_STATE_BYTES. */
  SQ_STATE: 0x2000,
  CQ_STATE: 0x2800,
  QUEUE_STATE_BYTES: 32,
  Q_BASE: 0x00,
  Q_ENTRIES: 0x08,
  /** SQ: the device's head (next entry it fetches). CQ: the device's tail (next entry it posts). */
  Q_INDEX: 0x0c,
  /** SQ: its completion queue. CQ: the phase tag of the current pass (1 on the first). */
  Q_LINK: 0x10,
  /** CQ only: interrupt vector, and bit 0 IEN in Q_FLAGS. */
  Q_VECTOR: 0x14,
  Q_FLAGS: 0x18,
  /** Why CSTS.CFS was set: 0x100 | fault type for a queue DMA fault, 0x200 for a bad admin queue setup. */
  FATAL_STATUS: 0x3000,
  FATAL_DMA_FAULT: 0x100,
  FATAL_BAD_ADMIN_QUEUES: 0x200,
  /** Commands completed, completions with a non-zero status, and times an SQ waited for a full CQ (free-running). */
  COMMANDS: 0x3004,
  ERRORS: 0x3008,
  CQ_FULL_STALLS: 0x300c,
  /** Namespace 1 size in logical blocks (set at reset from modelOptions.namespaceBytes). */
  NAMESPACE_BLOCKS: 0x3010,
  /** Asynchronous Event Requests held (never completed: no event ever happens; a reset drops them). */
  AERS_OUTSTANDING: 0x3014,
  /** Read and Write commands completed successfully, and the logical blocks they moved (64-bit): the SMART log's counters. */
  READ_COMMANDS: 0x3018,
  WRITE_COMMANDS: 0x301c,
  BLOCKS_READ: 0x3020,
  BLOCKS_WRITTEN: 0x3028,
  /** Current value of feature f (Set Features) at FEATURES + 4f, for f < 16; the under-temperature threshold beside them. */
  FEATURES: 0x3100,
  UNDER_TEMPERATURE: 0x3140,
  /** Interrupt Vector Configuration of vector v at VECTOR_CONFIGURATION + 4v. */
  VECTOR_CONFIGURATION: 0x3180,
} as const);

const R = NVME;

/** SQyTDBL: submission queue y tail doorbell (CAP.DSTRD = 0). */
export function sqTailDoorbell(qid: number): number {
  return R.DOORBELLS + 2 * qid * 4;
}

/** CQyHDBL: completion queue y head doorbell. */
export function cqHeadDoorbell(qid: number): number {
  return R.DOORBELLS + (2 * qid + 1) * 4;
}

export function sqState(qid: number): number {
  return R.SQ_STATE + qid * R.QUEUE_STATE_BYTES;
}

export function cqState(qid: number): number {
  return R.CQ_STATE + qid * R.QUEUE_STATE_BYTES;
}

/** Whether a driver may write the register at `offset`: INTMS, INTMC, CC, AQA, ASQ, ACQ and the doorbells. */
export function nvmeRegisterWritable(offset: number): boolean {
  return (
    offset === R.INTMS ||
    offset === R.INTMC ||
    offset === R.CC ||
    (offset >= R.AQA && offset < R.ACQ + 8) ||
    (offset >= R.DOORBELLS && offset < R.DOORBELLS + 8 * R.MAX_QUEUES)
  );
}

/** CAP as a number: MQES, CQR (contiguous queues required), TO, DSTRD 0, CSS bit 37 (NVM), MPSMIN = MPSMAX = 0 (4 KiB). */
export function capValue(): number {
  const low = R.MQES | (1 << 16) | (R.TIMEOUT << 24);
  const high = 1 << (37 - 32);
  return (low >>> 0) + high * 2 ** 32;
}

/** The namespace size a function was configured with (modelOptions.namespaceBytes), validated. */
export function namespaceBytesOf(options: Readonly<Record<string, unknown>>): number {
  const bytes = options.namespaceBytes ?? 16 * 1024 * 1024;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 4096 || bytes % R.LBA_BYTES !== 0) {
    throw new RangeError(`nvme: modelOptions.namespaceBytes must be a multiple of 512 of at least 4096 (got ${String(bytes)})`);
  }
  return bytes;
}

/**
 * Controller reset (CC.EN cleared): every queue goes away, every doorbell reads 0, held
 * Asynchronous Event Requests are dropped, interrupt masks clear and features return to
 * their defaults.
 */
export function resetController(registers: RegisterFile): void {
  for (let qid = 0; qid < R.MAX_QUEUES; qid++) {
    const sq = sqState(qid);
    const cq = cqState(qid);
    for (let word = 0; word < R.QUEUE_STATE_BYTES; word += 4) {
      registers.set32(sq + word, 0);
      registers.set32(cq + word, 0);
    }
    registers.set32(sqTailDoorbell(qid), 0);
    registers.set32(cqHeadDoorbell(qid), 0);
  }
  registers.set32(R.AERS_OUTSTANDING, 0);
  registers.set32(R.INTMS, 0);
  registers.set32(R.INTMC, 0);
  resetFeatures(registers);
}

/** Every feature's default value (Get Features with SEL 1 answers these). */
export function featureDefault(fid: number): number {
  if (fid === R.FEATURE_TEMPERATURE_THRESHOLD) return R.WCTEMP;
  if (fid === R.FEATURE_VOLATILE_WRITE_CACHE) return 1;
  return 0;
}

function resetFeatures(registers: RegisterFile): void {
  for (let fid = 0; fid < 16; fid++) registers.set32(R.FEATURES + 4 * fid, featureDefault(fid));
  registers.set32(R.UNDER_TEMPERATURE, 0);
  for (let vector = 0; vector < R.MAX_VECTORS; vector++) registers.set32(R.VECTOR_CONFIGURATION + 4 * vector, vector);
}
