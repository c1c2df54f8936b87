import { Errors } from '../../base/errors.js';
import { NVME as R } from '../models/nvme.js';
import type { MappedBuffer } from './driver-base.js';
import type { PrpPage } from './nvme-prp-lists.js';

/** Options, types and errors of NvmeDriver (devices/drivers/nvme-driver.ts). */

/** How a command ended: status = SC | SCT << 8 from the completion (0 is success); dw0 its DW0. */
export interface NvmeCompletion {
  status: number;
  dw0: number;
}

/** A command as the submission entry carries it (CID is the driver's). */
export interface NvmeCommand {
  opcode: number;
  nsid?: number;
  prp1?: number;
  prp2?: number;
  cdw10?: number;
  cdw11?: number;
  cdw12?: number;
  cdw13?: number;
  cdw14?: number;
  cdw15?: number;
}

export interface NvmeDriverOptions {
  /** Entries of the I/O submission and completion queues (2..4096, default 64): depth - 1 commands in flight. */
  queueDepth?: number;
  /** Entries of the admin queues (2..4096, default 16). */
  adminDepth?: number;
  /** MSI vector of the I/O completion queue (1..31, default 1; the admin queue uses 0). */
  vector?: number;
}

/** Why the driver refused or abandoned a command: the queue was full, the controller failed, or the driver stopped. */
export class NvmeError extends Error {
  readonly code: 'queue-full' | 'fatal' | 'stopped' | 'command';
  readonly status: number;
  constructor(code: NvmeError['code'], message: string, status = -1) {
    super(message);
    this.name = 'NvmeError';
    this.code = code;
    this.status = status;
  }
}

/** A command submitted and not yet completed. */
interface Pending {
  resolve: (completion: NvmeCompletion) => void;
  reject: (error: Error) => void;
  prpPages: PrpPage[];
}

/** A submission and completion queue pair as the driver keeps it. */
export interface Queue {
  readonly qid: number;
  readonly entries: number;
  readonly sq: MappedBuffer;
  readonly cq: MappedBuffer;
  /** The driver's SQ tail, the controller's SQ head (SQHD of the last completion), the driver's CQ head and expected phase tag. */
  tail: number;
  sqHead: number;
  cqHead: number;
  phase: number;
  nextCid: number;
  /** A CQ head doorbell write is scheduled. */
  doorbellDue: boolean;
  readonly pending: Map<number, Pending>;
}

/** A queue depth option: an integer in 2..MQES + 1. */
export function checkDepth(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 2 || value > R.MQES + 1) throw Errors.OptionOutOfRange(name, `an integer in 2..${R.MQES + 1}`, value);
  return value;
}
