import { DMA_OK } from '../../iommu/data-plane/dma-port.js';
import type { RegisterFile } from '../../hardware/register-file.js';
import type { DeviceModel, DeviceWorkContext } from '../device-model.js';
import { executeAdmin, HELD } from './nvme-admin.js';
import { executeIo } from './nvme-io.js';
import {
  capValue,
  cqHeadDoorbell,
  cqState,
  namespaceBytesOf,
  nvmeRegisterWritable,
  NVME as R,
  resetController,
  sqState,
  sqTailDoorbell,
} from './nvme-registers.js';
import { NvmeScratch } from './nvme-scratch.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

export { cqHeadDoorbell, NVME, sqTailDoorbell } from './nvme-registers.js';

/**
 * An NVMe storage controller, after NVM Express 1.4, that Linux's own nvme driver accepts:
 * one controller, one namespace (NSID 1) of 512-byte logical blocks kept in the function's
 * device-private memory (modelOptions.namespaceBytes, default 16 MiB), admin and I/O queue
 * pairs in guest memory, PRP data pointers, an interrupt per completion queue (MSI vector, or
 * the INTx pin for machines without MSI). Every access to guest memory goes through the
 * IOMMU (the function's DMA port).
 *
 * PCI identity: 7e57:0020, class 01 08 02 (NVM Express). Linux binds its nvme driver by that
 * class; the ID is viommu's own, deliberately not QEMU's 1b36:0010, which Linux quirks
 * (NVME_QUIRK_BOGUS_NID: it would ignore the namespace identifiers).
 *
 * Registers (BAR0, 16 KiB, little-endian; NVMe 1.4 section 3.1). Drivers may write INTMS,
 * INTMC, CC, AQA, ASQ, ACQ and the doorbells; writes elsewhere are dropped.
 *   0x00 CAP     RO  MQES 4095 (15:0), CQR 1 (16), TO 0x14 (31:24), DSTRD 0 (35:32), CSS NVM (37),
 *                    MPSMIN = MPSMAX = 0 (4 KiB pages)
 *   0x08 VS      RO  0x00010400 (1.4.0)
 *   0x0C INTMS   RW1S interrupt mask set, 0x10 INTMC RW1C interrupt mask clear: both read the mask;
 *                    bit v masks vector v on the INTx pin (MSI vectors are not masked: these
 *                    registers are for pin-based and single-message interrupts)
 *   0x14 CC      RW  EN (0), CSS (6:4, must be 0), MPS (10:7, must be 0), AMS (13:11, must be 0),
 *                    SHN (15:14), IOSQES (19:16), IOCQES (23:20; entries are always 64/16 bytes);
 *                    a doorbell: EN 0 -> 1 makes the controller ready when it next runs,
 *                    EN 1 -> 0 resets it (every queue and held event request goes, doorbells and
 *                    masks read 0, features return to their defaults, CSTS clears)
 *   0x1C CSTS    RO  RDY (0), CFS (1, controller fatal status), SHST (3:2; 10b once SHN was seen)
 *   0x24 AQA     RW  ASQS (11:0), ACQS (27:16): admin queue entries, zero-based, at least 1
 *   0x28 ASQ     RW  admin SQ base (64-bit, page aligned)
 *   0x30 ACQ     RW  admin CQ base (64-bit, page aligned)
 *   0x1000 + (2y) * 4      SQyTDBL  submission queue y tail doorbell (y < 32)
 *   0x1000 + (2y + 1) * 4  CQyHDBL  completion queue y head doorbell
 *   0x2000 + 32y  SQ y state, 0x2800 + 32y CQ y state (this model's, read-only to drivers):
 *                 +0x00 base (64-bit), +0x08 entries (0: no such queue), +0x0C SQ head / CQ tail,
 *                 +0x10 SQ: its CQID / CQ: current phase tag, +0x14 CQ vector, +0x18 CQ IEN (bit 0)
 *   0x3000 FATAL_STATUS    why CFS was set: 0x100 | fault type (queue DMA), 0x200 (bad AQA/ASQ/ACQ/CC)
 *   0x3004 COMMANDS, 0x3008 ERRORS  completions posted, and those with a non-zero status
 *   0x300C CQ_FULL_STALLS  batches in which a submission queue waited for its full CQ
 *   0x3010 NAMESPACE_BLOCKS  namespace size in logical blocks
 *   0x3014 AERS_OUTSTANDING, 0x3018.. READ/WRITE_COMMANDS, BLOCKS_READ/WRITTEN (the SMART counters)
 *   0x3100 FEATURES (current values), 0x3180 VECTOR_CONFIGURATION (per vector)
 * CC and every SQyTDBL/CQyHDBL are doorbells (a write schedules the controller).
 *
 * Interrupts: a batch that posted to a completion queue with IEN raises that queue's vector
 * (MSI). The INTx pin (intxAsserted) is a level: asserted while a completion queue with IEN
 * holds entries the driver has not consumed (its tail is not its CQyHDBL head) and its vector
 * is not masked in INTMS. The machine also honours the Command register's Interrupt Disable.
 *
 * Submission entry (64 bytes): CDW0 opcode (7:0), FUSE (9:8, must be 0), PSDT (15:14, must be 0:
 * PRPs only), CID (31:16, opaque: Linux keeps a generation count in its top bits); NSID at 4;
 * PRP1 at 24; PRP2 at 32; CDW10..15 at 40..60. Completion entry (16 bytes): DW0 command
 * specific (the fault type for a Data Transfer Error), DW1 0, DW2 SQHD (15:0) | SQID (31:16),
 * DW3 CID (15:0) | phase tag (16) | status (31:17) with status = SC | SCT << 8 | DNR << 14.
 * The phase tag is 1 on the first pass over a CQ and flips each time its tail wraps.
 *
 * Admin commands (nvme-admin.ts): Identify (06h; CNS 00h namespace, 01h controller, 02h active
 * namespace list, 03h namespace identification descriptors: the EUI64; any other CNS is
 * Invalid Field), Get Log Page (02h; 01h error information, 02h SMART / health, 03h firmware
 * slot; offsets and lengths in dwords, buffers may start mid-page), Set / Get Features (09h /
 * 0Ah; 01h, 02h, 04h, 05h, 06h, 07h Number of Queues: 31 submission and 31 completion queues,
 * 08h, 09h, 0Ah, 0Bh; nothing saveable), Abort (08h; answered "not aborted": every command
 * completes within the batch that fetched it), Asynchronous Event Request (0Ch; held, up to
 * AERL + 1 = 4, never completed: no event ever happens; a reset drops them), Create I/O CQ
 * (05h; PC must be 1, IEN, IV < 32), Create I/O SQ (01h), Delete I/O SQ (00h), Delete I/O CQ
 * (04h; refused with Invalid Queue Deletion while an SQ uses it). NVM commands on NSID 1
 * (nvme-io.ts): Flush (00h; VWC is set so that drivers flush, and nothing is ever cached),
 * Write (01h), Read (02h); transfers up to 2^MDTS = 1024 pages (4 MiB); PRP lists need not
 * start on a page (nvme-prp.ts).
 * Status codes: Invalid Command Opcode 01h, Invalid Field 02h, Data Transfer Error 04h, Invalid
 * Namespace or Format 0Bh, Command Sequence Error 0Ch, Invalid PRP Offset 13h, LBA Out of Range
 * 80h; command specific (SCT 1): Completion Queue Invalid 00h, Invalid Queue Identifier 01h,
 * Invalid Queue Size 02h, Asynchronous Event Request Limit Exceeded 05h, Invalid Interrupt
 * Vector 08h, Invalid Log Page 09h, Invalid Queue Deletion 0Ch, Feature Identifier Not
 * Saveable 0Dh. Every error status but Data Transfer Error carries DNR (a retry cannot help).
 *
 * Errors: a DMA fault while moving a command's data (or reading its PRP list) completes that
 * command with Data Transfer Error, without DNR, and the batch goes on; writes are staged and
 * reach the namespace only whole. A fault fetching a submission entry or posting a completion
 * is fatal: CSTS.CFS is set, the controller stops until reset, and the CQ's vector is raised.
 * A completion is never lost: each fetched command is completed, or fails the controller.
 * A completion queue that is full (tail + 1 == head, head from its CQyHDBL) pauses every SQ
 * feeding it until the driver moves the head doorbell. An invalid doorbell value (not below the
 * queue's size) makes the queue look empty (SQ) or full (CQ).
 *
 * Not implemented: firmware, format, namespace management, keep alive, timestamps, power state
 * transitions, host memory buffer, SGLs, fused operations, metadata, end-to-end protection,
 * reservations, weighted round robin (queues are served round robin, one command each),
 * controller memory buffer, NSSR.
 */

/** Commands and data bytes per scheduling, so that one busy controller cannot starve the others. */
const BATCH_COMMANDS = 128;
const BATCH_BYTES = 8 * 1024 * 1024;

export const nvmeModel: DeviceModel<NvmeScratch> = {
  name: 'nvme',
  vendorId: VIOMMU_VENDOR_ID,
  deviceId: 0x0020,
  classCode: 0x010802, // mass storage, non-volatile memory, NVM Express
  registerBytes: 16 * 1024,
  isDoorbell: (offset) => offset === R.CC || (offset >= R.DOORBELLS && offset < R.DOORBELLS + 8 * R.MAX_QUEUES),
  privateMemoryBytes: (options) => namespaceBytesOf(options),
  reset(registers, options) {
    registers.set64(R.CAP, capValue());
    registers.set32(R.VS, R.VERSION);
    registers.set32(R.NAMESPACE_BLOCKS, namespaceBytesOf(options) / R.LBA_BYTES);
    resetController(registers);
  },
  registerWritable: nvmeRegisterWritable,
  registerWritten(registers, offset, value) {
    // INTMS sets mask bits, INTMC clears them, and both then read the mask. The other of the
    // two still holds the mask from before this write.
    if (offset === R.INTMS) setInterruptMask(registers, registers.read32(R.INTMC) | value);
    else if (offset === R.INTMC) setInterruptMask(registers, registers.read32(R.INTMS) & ~value);
  },
  intxAsserted,
  createScratch: () => new NvmeScratch(),
  process(context) {
    const registers = context.registers;
    const cc = registers.read32(R.CC);
    let csts = registers.read32(R.CSTS);
    if ((cc & R.CC_EN) === 0) {
      // Disabled: a controller reset. This is also how a driver recovers from CFS.
      resetController(registers);
      registers.set32(R.CSTS, 0);
      registers.set32(R.FATAL_STATUS, 0);
      return;
    }
    if ((csts & R.CSTS_CFS) !== 0) return;
    if ((csts & R.CSTS_RDY) === 0) {
      if (!enable(registers, cc)) {
        registers.set32(R.FATAL_STATUS, R.FATAL_BAD_ADMIN_QUEUES);
        registers.set32(R.CSTS, csts | R.CSTS_CFS);
        return;
      }
      csts |= R.CSTS_RDY;
      registers.set32(R.CSTS, csts);
    }
    if (((cc >>> R.CC_SHN_SHIFT) & 3) !== 0 && (csts & R.CSTS_SHST_MASK) !== R.CSTS_SHST_COMPLETE) {
      // Shutdown notification: nothing is cached, so shutdown processing is complete at once.
      registers.set32(R.CSTS, (csts & ~R.CSTS_SHST_MASK) | R.CSTS_SHST_COMPLETE);
    }
    runQueues(context);
  },
};

/** CC.EN 0 -> 1: checks CC and the admin queue registers and creates admin queue pair 0. */
function enable(registers: RegisterFile, cc: number): boolean {
  const aqa = registers.read32(R.AQA);
  const sqEntries = (aqa & 0xfff) + 1;
  const cqEntries = ((aqa >>> 16) & 0xfff) + 1;
  const asq = registers.read64(R.ASQ);
  const acq = registers.read64(R.ACQ);
  const css = (cc >>> R.CC_CSS_SHIFT) & 7;
  const mps = (cc >>> R.CC_MPS_SHIFT) & 0xf;
  const ams = (cc >>> R.CC_AMS_SHIFT) & 7;
  if (sqEntries < 2 || cqEntries < 2 || asq % R.PAGE !== 0 || acq % R.PAGE !== 0 || css !== 0 || mps !== 0 || ams !== 0) return false;
  const sq = sqState(0);
  registers.set64(sq + R.Q_BASE, asq);
  registers.set32(sq + R.Q_INDEX, 0);
  registers.set32(sq + R.Q_LINK, 0);
  registers.set32(sq + R.Q_ENTRIES, sqEntries);
  const cq = cqState(0);
  registers.set64(cq + R.Q_BASE, acq);
  registers.set32(cq + R.Q_INDEX, 0);
  registers.set32(cq + R.Q_LINK, 1);
  registers.set32(cq + R.Q_VECTOR, 0);
  registers.set32(cq + R.Q_FLAGS, 1);
  registers.set32(cq + R.Q_ENTRIES, cqEntries);
  return true;
}

function setInterruptMask(registers: RegisterFile, mask: number): void {
  registers.set32(R.INTMS, mask);
  registers.set32(R.INTMC, mask);
}

/** The INTx level: some completion queue with IEN holds unconsumed entries, and its vector is not masked. */
function intxAsserted(registers: RegisterFile): boolean {
  const mask = registers.read32(R.INTMS);
  for (let qid = 0; qid < R.MAX_QUEUES; qid++) {
    const cq = cqState(qid);
    if (registers.read32(cq + R.Q_ENTRIES) === 0 || (registers.read32(cq + R.Q_FLAGS) & 1) === 0) continue;
    if (registers.read32(cq + R.Q_INDEX) === registers.read32(cqHeadDoorbell(qid))) continue;
    if (((mask >>> (registers.read32(cq + R.Q_VECTOR) & 31)) & 1) === 0) return true;
  }
  return false;
}

/** Serves the submission queues round robin, one command each per round, within the batch limits. */
function runQueues(context: DeviceWorkContext<NvmeScratch>): void {
  const { registers, port, scratch } = context;
  let commands = 0;
  let bytes = 0;
  let vectors = 0;
  let stalled = 0;
  let progress = true;
  let fatal = false;
  while (progress && !fatal && commands < BATCH_COMMANDS && bytes < BATCH_BYTES) {
    progress = false;
    for (let sqid = 0; sqid < R.MAX_QUEUES && commands < BATCH_COMMANDS && bytes < BATCH_BYTES; sqid++) {
      const sq = sqState(sqid);
      const entries = registers.read32(sq + R.Q_ENTRIES);
      if (entries === 0) continue;
      const head = registers.read32(sq + R.Q_INDEX);
      const tail = registers.read32(sqTailDoorbell(sqid));
      if (tail >= entries || head === tail) continue;
      const cqid = registers.read32(sq + R.Q_LINK);
      const cq = cqState(cqid);
      const cqEntries = registers.read32(cq + R.Q_ENTRIES);
      const cqTail = registers.read32(cq + R.Q_INDEX);
      const cqHead = registers.read32(cqHeadDoorbell(cqid));
      if (cqHead >= cqEntries || (cqTail + 1) % cqEntries === cqHead) {
        stalled |= 1 << sqid;
        continue;
      }
      const vector = registers.read32(cq + R.Q_VECTOR);
      const interrupts = (registers.read32(cq + R.Q_FLAGS) & 1) !== 0;
      if (port.read(registers.read64(sq + R.Q_BASE) + head * R.SQ_ENTRY_BYTES, R.SQ_ENTRY_BYTES, scratch.entry) !== DMA_OK) {
        fatal = halt(context, port.lastResult);
        if (interrupts) vectors |= 1 << vector;
        break;
      }
      const sqHead = (head + 1) % entries;
      registers.set32(sq + R.Q_INDEX, sqHead);
      scratch.begin();
      const status = sqid === 0 ? executeAdmin(context) : executeIo(context);
      progress = true;
      if (status === HELD) continue;
      // Post the completion; DW3 (phase tag) goes last, as it is what a polling driver looks at.
      const phase = registers.read32(cq + R.Q_LINK);
      const at = registers.read64(cq + R.Q_BASE) + cqTail * R.CQ_ENTRY_BYTES;
      const posted =
        port.writeU32(at, scratch.dw0) === DMA_OK &&
        port.writeU32(at + 4, 0) === DMA_OK &&
        port.writeU32(at + 8, (sqHead | (sqid << 16)) >>> 0) === DMA_OK &&
        port.writeU32(at + 12, ((scratch.dword(0) >>> 16) | (phase << 16) | (status << 17)) >>> 0) === DMA_OK;
      if (interrupts) vectors |= 1 << vector;
      if (!posted) {
        fatal = halt(context, port.lastResult);
        break;
      }
      const nextTail = (cqTail + 1) % cqEntries;
      registers.set32(cq + R.Q_INDEX, nextTail);
      if (nextTail === 0) registers.set32(cq + R.Q_LINK, phase ^ 1);
      registers.set32(R.COMMANDS, (registers.read32(R.COMMANDS) + 1) | 0);
      if (status !== R.SC_SUCCESS) registers.set32(R.ERRORS, (registers.read32(R.ERRORS) + 1) | 0);
      commands++;
      bytes += scratch.bytes;
    }
  }
  if (stalled !== 0) registers.set32(R.CQ_FULL_STALLS, (registers.read32(R.CQ_FULL_STALLS) + bitCount(stalled)) | 0);
  if (!fatal && progress && hasWork(registers)) context.again();
  for (let vector = 0; vectors !== 0; vector++, vectors >>>= 1) if ((vectors & 1) !== 0) context.raise(vector);
}

/** Whether some submission queue has entries its completion queue has room for. */
function hasWork(registers: RegisterFile): boolean {
  for (let sqid = 0; sqid < R.MAX_QUEUES; sqid++) {
    const sq = sqState(sqid);
    const entries = registers.read32(sq + R.Q_ENTRIES);
    if (entries === 0) continue;
    const tail = registers.read32(sqTailDoorbell(sqid));
    if (tail >= entries || tail === registers.read32(sq + R.Q_INDEX)) continue;
    const cqid = registers.read32(sq + R.Q_LINK);
    const cqEntries = registers.read32(cqState(cqid) + R.Q_ENTRIES);
    const cqHead = registers.read32(cqHeadDoorbell(cqid));
    if (cqHead < cqEntries && (registers.read32(cqState(cqid) + R.Q_INDEX) + 1) % cqEntries !== cqHead) return true;
  }
  return false;
}

/** A queue could not be reached: controller fatal status. */
function halt(context: DeviceWorkContext<NvmeScratch>, fault: number): true {
  const registers = context.registers;
  registers.set32(R.FATAL_STATUS, R.FATAL_DMA_FAULT | fault);
  registers.set32(R.CSTS, registers.read32(R.CSTS) | R.CSTS_CFS);
  return true;
}

function bitCount(mask: number): number {
  let count = 0;
  for (let m = mask >>> 0; m !== 0; m &= m - 1) count++;
  return count;
}
