import { nextMacrotask } from '../../base/macrotask.js';
import { Errors } from '../../base/errors.js';
import { TWO_32 } from '../../base/numbers.js';
import { cqHeadDoorbell, NVME as R, sqTailDoorbell } from '../models/nvme.js';
import type { PciFunction } from '../../hardware/pci-function.js';
import type { DriverHost } from './driver-host.js';
import { checkAddress, checkBuffer, checkCount, refuse } from './arguments.js';
import { DriverBase, type MappedBuffer } from './driver-base.js';
import { parseControllerIdentity, parseNamespaceIdentity, type NvmeIdentity } from './nvme-identify.js';
import { checkDepth, type NvmeCommand, type NvmeCompletion, type NvmeDriverOptions, NvmeError, type Queue } from './nvme-driver-support.js';
import { PrpLists, type PrpPage } from './nvme-prp-lists.js';

export type { NvmeIdentity, NvmeNamespaceIdentity } from './nvme-identify.js';
export { type NvmeCommand, type NvmeCompletion, type NvmeDriverOptions, NvmeError } from './nvme-driver-support.js';

const PAGE = R.PAGE;

/**
 * The driver of the 'nvme' model (devices/models/nvme.ts), written only against the V2 table
 * and the platform surface (through DriverBase): admin and I/O queues in a reserved logical
 * range, Identify, one I/O queue pair, PRP lists in driver pages mapped read-only for the
 * device, completions reaped by phase tag from the MSI handler.
 */
export class NvmeDriver extends DriverBase {
  readonly queueDepth: number;
  readonly adminDepth: number;
  readonly vector: number;
  /** What Identify said (set by start()). */
  identity!: NvmeIdentity;
  /** Completions reaped so far, and those with a non-zero status. */
  completed = 0;
  failed = 0;
  #admin: Queue | null = null;
  #io: Queue | null = null;
  #identifyPages!: MappedBuffer;
  #prpLists: PrpLists | null = null;
  #identifyLock: Promise<unknown> = Promise.resolve();
  #running = false;

  constructor(platform: DriverHost, fn: PciFunction, options: NvmeDriverOptions = {}) {
    super(platform, fn);
    if (fn.model !== 'nvme') throw Errors.WrongDeviceModel('fn', fn.bdf, fn.model, 'nvme');
    this.queueDepth = checkDepth('queueDepth', options.queueDepth ?? 64);
    this.adminDepth = checkDepth('adminDepth', options.adminDepth ?? 16);
    this.vector = options.vector ?? 1;
    if (!Number.isInteger(this.vector) || this.vector < 1 || this.vector >= R.MAX_VECTORS)
      throw Errors.OptionOutOfRange('vector', `an integer in 1..${R.MAX_VECTORS - 1}`, this.vector);
  }

  /** Resets and enables the controller, identifies it and creates I/O queue pair 1. */
  async start(): Promise<this> {
    const admin = this.adminDepth;
    const depth = this.queueDepth;
    this.attach([admin * R.SQ_ENTRY_BYTES, admin * R.CQ_ENTRY_BYTES, depth * R.SQ_ENTRY_BYTES, depth * R.CQ_ENTRY_BYTES, 2 * PAGE]);
    this.#running = true;
    this.#prpLists = new PrpLists(this.platform, this.V2, this.domain);
    try {
      this.#admin = this.#queue(0, admin);
      const io = this.#queue(1, depth);
      this.#identifyPages = this.ring(2 * PAGE);
      const registers = this.fn.registers!;
      registers.write32(R.CC, 0);
      await this.#waitFor(() => (registers.read32(R.CSTS) & R.CSTS_RDY) === 0, 'the controller did not reset');
      registers.write32(R.AQA, (admin - 1) | ((admin - 1) << 16));
      registers.write64(R.ASQ, this.#admin.sq.iova);
      registers.write64(R.ACQ, this.#admin.cq.iova);
      this.fn.setInterruptHandler(() => this.reap());
      registers.write32(R.CC, R.CC_EN | (6 << R.CC_IOSQES_SHIFT) | (4 << R.CC_IOCQES_SHIFT));
      await this.#waitFor(() => (registers.read32(R.CSTS) & (R.CSTS_RDY | R.CSTS_CFS)) !== 0, 'the controller did not become ready');
      if (this.fatal) throw new NvmeError('fatal', `the controller failed to enable (FATAL_STATUS 0x${registers.read32(R.FATAL_STATUS).toString(16)})`);
      this.identity = await this.identify();
      const qsize = (depth - 1) << 16;
      await this.#expect('Create I/O Completion Queue', {
        opcode: R.ADMIN_CREATE_IO_CQ,
        prp1: io.cq.iova,
        cdw10: (qsize | io.qid) >>> 0,
        cdw11: ((this.vector << 16) | 0x3) >>> 0,
      });
      await this.#expect('Create I/O Submission Queue', {
        opcode: R.ADMIN_CREATE_IO_SQ,
        prp1: io.sq.iova,
        cdw10: (qsize | io.qid) >>> 0,
        cdw11: ((io.qid << 16) | 0x1) >>> 0,
      });
      this.#io = io;
      return this;
    } catch (error) {
      await this.#teardown();
      throw error;
    }
  }

  /** Identify Controller and Identify Namespace 1. */
  identify(): Promise<NvmeIdentity> {
    if (this.#admin === null || !this.#running) return Promise.reject(new NvmeError('stopped', 'the driver is not started'));
    const run = async (): Promise<NvmeIdentity> => {
      const pages = this.#identifyPages;
      const controller = this.#adminCommand({ opcode: R.ADMIN_IDENTIFY, prp1: pages.iova, cdw10: R.CNS_CONTROLLER });
      const namespace = this.#adminCommand({ opcode: R.ADMIN_IDENTIFY, nsid: 1, prp1: pages.iova + PAGE, cdw10: R.CNS_NAMESPACE });
      const [c, n] = await Promise.all([controller, namespace]);
      if (c.status !== 0 || n.status !== 0)
        throw new NvmeError('command', `Identify failed (status 0x${(c.status || n.status).toString(16)})`, c.status || n.status);
      const memory = this.platform.memory;
      return { ...parseControllerIdentity(memory.read(pages.physical(0), PAGE)), namespace: parseNamespaceIdentity(memory.read(pages.physical(PAGE), PAGE)) };
    };
    // One Identify at a time: they share the identify pages.
    const result = this.#identifyLock.then(run, run);
    this.#identifyLock = result.catch(() => undefined);
    return result;
  }

  /** Reads `blocks` logical blocks from `lba` into `buffer` at byte `offset` (dword aligned). */
  read(lba: number, blocks: number, buffer: MappedBuffer, offset = 0): Promise<{ status: number }> {
    const refused = refuse(() => checkTransfer(lba, blocks, buffer, offset));
    if (refused !== null) return refused;
    return this.#transfer(R.IO_READ, lba, blocks, buffer, offset);
  }

  /** Writes `blocks` logical blocks at `lba` from `buffer` at byte `offset` (dword aligned). */
  write(lba: number, blocks: number, buffer: MappedBuffer, offset = 0): Promise<{ status: number }> {
    const refused = refuse(() => checkTransfer(lba, blocks, buffer, offset));
    if (refused !== null) return refused;
    return this.#transfer(R.IO_WRITE, lba, blocks, buffer, offset);
  }

  async flush(): Promise<{ status: number }> {
    const { status } = await this.passthrough({ opcode: R.IO_FLUSH, nsid: 1 });
    return { status };
  }

  /** Submits a command as given (CID aside) to the I/O queue, or to the admin queue. */
  passthrough(command: NvmeCommand, queue: 'io' | 'admin' = 'io'): Promise<NvmeCompletion> {
    const target = queue === 'admin' ? this.#admin : this.#io;
    if (target === null || !this.#running) return Promise.reject(new NvmeError('stopped', 'the driver is not started'));
    return this.#submit(target, command, []);
  }

  /** Whether the controller reported a fatal status (CSTS.CFS). */
  get fatal(): boolean {
    return (this.fn.registers!.read32(R.CSTS) & R.CSTS_CFS) !== 0;
  }

  /** The I/O queue pair as the driver sees it. */
  get queueState(): { depth: number; tail: number; sqHead: number; cqHead: number; phase: number; inFlight: number } {
    const q = this.#io;
    if (q === null) return { depth: this.queueDepth, tail: 0, sqHead: 0, cqHead: 0, phase: 1, inFlight: 0 };
    return { depth: q.entries, tail: q.tail, sqHead: q.sqHead, cqHead: q.cqHead, phase: q.phase, inFlight: q.pending.size };
  }

  /** PRP list pages the driver holds (mapped for the device, reused across commands). */
  get prpListPages(): number {
    return this.#prpLists?.pages ?? 0;
  }

  /** Reaps both completion queues by phase tag (the MSI handler); fails everything if the controller is fatal. */
  reap(): number {
    let reaped = 0;
    for (const queue of [this.#admin, this.#io]) if (queue !== null) reaped += this.#reapQueue(queue);
    if (this.fatal) this.#failAll(this.#fatalError());
    return reaped;
  }

  /** Deletes the I/O queues, shuts the controller down, disables it and releases everything. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    await this.platform.devicesIdle();
    this.reap();
    const registers = this.fn.registers!;
    if (!this.fatal && this.#io !== null) {
      const io = this.#io;
      this.#failQueue(io, new NvmeError('stopped', 'the driver stopped'));
      await this.#expect('Delete I/O Submission Queue', { opcode: R.ADMIN_DELETE_IO_SQ, cdw10: io.qid });
      await this.#expect('Delete I/O Completion Queue', { opcode: R.ADMIN_DELETE_IO_CQ, cdw10: io.qid });
      this.#io = null;
      registers.write32(R.CC, registers.read32(R.CC) | R.CC_SHN_NORMAL);
      await this.#waitFor(() => (registers.read32(R.CSTS) & R.CSTS_SHST_MASK) === R.CSTS_SHST_COMPLETE, 'shutdown did not complete');
    }
    await this.#teardown();
  }

  #queue(qid: number, entries: number): Queue {
    const sq = this.ring(entries * R.SQ_ENTRY_BYTES);
    const cq = this.ring(entries * R.CQ_ENTRY_BYTES);
    return { qid, entries, sq, cq, tail: 0, sqHead: 0, cqHead: 0, phase: 1, nextCid: 0, doorbellDue: false, pending: new Map() };
  }

  /** Disables the controller and undoes attach(); the controller's queues go with the reset. */
  async #teardown(): Promise<void> {
    const registers = this.fn.registers!;
    registers.write32(R.CC, 0);
    await this.#waitFor(() => (registers.read32(R.CSTS) & (R.CSTS_RDY | R.CSTS_CFS)) === 0, 'the controller did not reset');
    this.fn.setInterruptHandler(null);
    this.#failAll(new NvmeError('stopped', 'the driver stopped'));
    this.#running = false;
    this.#admin = null;
    this.#io = null;
    this.#prpLists?.release();
    this.#prpLists = null;
    this.detach();
  }

  async #waitFor(condition: () => boolean, what: string): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      await this.platform.devicesIdle();
      if (condition()) return;
      await nextMacrotask();
    }
    throw new NvmeError('fatal', what);
  }

  #adminCommand(command: NvmeCommand): Promise<NvmeCompletion> {
    return this.#submit(this.#admin!, command, []);
  }

  async #expect(what: string, command: NvmeCommand): Promise<void> {
    const { status } = await this.#adminCommand(command);
    if (status !== 0) throw new NvmeError('command', `${what} failed (status 0x${status.toString(16)})`, status);
  }

  #transfer(opcode: number, lba: number, blocks: number, buffer: MappedBuffer, offset: number): Promise<{ status: number }> {
    // checkTransfer has made lba and offset non-negative safe integers and blocks a positive one.
    const bytes = blocks * R.LBA_BYTES;
    if (blocks > 65536) return Promise.reject(Errors.ArgumentOutOfRange('blocks', 'an integer in 1..65536', blocks));
    if (offset % 4 !== 0 || offset + bytes > buffer.bytes) {
      return Promise.reject(Errors.ArgumentOutOfRange('offset', `dword aligned, with its ${bytes} bytes within the ${buffer.bytes}-byte buffer`, offset));
    }
    const io = this.#io;
    if (io === null || !this.#running) return Promise.reject(new NvmeError('stopped', 'the driver is not started'));
    if (bytes > this.identity.maxTransferBytes)
      return Promise.reject(
        Errors.ArgumentOutOfRange(
          'blocks',
          `at most ${this.identity.maxTransferBytes / R.LBA_BYTES} (the controller's maximum transfer of ${this.identity.maxTransferBytes} bytes)`,
          blocks,
        ),
      );
    if (this.#full(io) || this.fatal) return Promise.reject(this.fatal ? this.#fatalError() : this.#fullError());
    const iova = buffer.iova + offset;
    const first = Math.min(bytes, PAGE - (iova % PAGE));
    const remaining = bytes - first;
    let prp2 = 0;
    let prpPages: PrpPage[] = [];
    if (remaining > PAGE) {
      prpPages = this.#prpLists!.build(iova + first, Math.ceil(remaining / PAGE));
      prp2 = prpPages[0]!.iova;
    } else if (remaining > 0) {
      prp2 = iova + first;
    }
    const command = { opcode, nsid: 1, prp1: iova, prp2, cdw10: lba % TWO_32, cdw11: Math.floor(lba / TWO_32), cdw12: blocks - 1 };
    return this.#submit(io, command, prpPages).then(({ status }) => ({ status }));
  }

  #full(queue: Queue): boolean {
    return queue.pending.size >= queue.entries - 1 || (queue.tail + 1) % queue.entries === queue.sqHead;
  }

  #fullError(): NvmeError {
    return new NvmeError('queue-full', 'the submission queue is full: wait for completions');
  }

  #fatalError(): NvmeError {
    return new NvmeError('fatal', 'the controller reported a fatal status (CSTS.CFS)');
  }

  #submit(queue: Queue, command: NvmeCommand, prpPages: PrpPage[]): Promise<NvmeCompletion> {
    if (this.#full(queue) || this.fatal) {
      this.#prpLists?.giveBack(prpPages);
      return Promise.reject(this.fatal ? this.#fatalError() : this.#fullError());
    }
    let cid = queue.nextCid;
    while (queue.pending.has(cid)) cid = (cid + 1) % 0xffff; // CID FFFFh is never used
    queue.nextCid = (cid + 1) % 0xffff;
    const memory = this.platform.memory;
    const at = queue.sq.physical(queue.tail * R.SQ_ENTRY_BYTES);
    memory.fill(at, R.SQ_ENTRY_BYTES, 0);
    memory.writeU32(at, (command.opcode & 0xff) | (cid << 16));
    memory.writeU32(at + 4, command.nsid ?? 0);
    memory.writeU64(at + 24, command.prp1 ?? 0);
    memory.writeU64(at + 32, command.prp2 ?? 0);
    const dwords = [command.cdw10, command.cdw11, command.cdw12, command.cdw13, command.cdw14, command.cdw15];
    dwords.forEach((value, i) => {
      memory.writeU32(at + 40 + 4 * i, value ?? 0);
    });
    const done = new Promise<NvmeCompletion>((resolve, reject) => queue.pending.set(cid, { resolve, reject, prpPages }));
    queue.tail = (queue.tail + 1) % queue.entries;
    // The doorbell: the register write publishes the entry written above.
    this.fn.registers!.write32(sqTailDoorbell(queue.qid), queue.tail);
    return done;
  }

  #reapQueue(queue: Queue): number {
    const memory = this.platform.memory;
    let reaped = 0;
    for (;;) {
      const at = queue.cq.physical(queue.cqHead * R.CQ_ENTRY_BYTES);
      const dw3 = memory.readU32(at + 12);
      if (((dw3 >>> 16) & 1) !== queue.phase) break;
      const completion = { status: (dw3 >>> 17) & 0x7fff, dw0: memory.readU32(at) };
      queue.sqHead = memory.readU32(at + 8) & 0xffff;
      queue.cqHead = (queue.cqHead + 1) % queue.entries;
      if (queue.cqHead === 0) queue.phase ^= 1;
      reaped++;
      this.completed++;
      if (completion.status !== 0) this.failed++;
      const cid = dw3 & 0xffff;
      const waiter = queue.pending.get(cid);
      if (waiter === undefined) continue;
      queue.pending.delete(cid);
      this.#prpLists?.giveBack(waiter.prpPages);
      waiter.resolve(completion);
    }
    if (reaped > 0) this.#ringCqHead(queue);
    return reaped;
  }

  /**
   * Writes CQyHDBL with the new head from a microtask (a DPC, so to speak), once per queue
   * for all the reaping done in this turn of the event loop (every interrupt of one batch, or
   * reap() called by hand): one register write, however many completions were reaped.
   * Writing it from the MSI handler itself would be safe too: the scheduler keeps the device
   * in flight while it delivers the batch's interrupts, so a doorbell rung there only marks
   * work pending and the device runs again after the batch, never beside it
   * (DeviceScheduler#finished).
   */
  #ringCqHead(queue: Queue): void {
    if (queue.doorbellDue) return;
    queue.doorbellDue = true;
    queueMicrotask(() => {
      queue.doorbellDue = false;
      if (this.#running) this.fn.registers!.write32(cqHeadDoorbell(queue.qid), queue.cqHead);
    });
  }

  #failQueue(queue: Queue, error: Error): void {
    for (const waiter of queue.pending.values()) {
      this.#prpLists?.giveBack(waiter.prpPages);
      waiter.reject(error);
    }
    queue.pending.clear();
  }

  #failAll(error: Error): void {
    for (const queue of [this.#admin, this.#io]) if (queue !== null) this.#failQueue(queue, error);
  }
}

function checkTransfer(lba: unknown, blocks: unknown, buffer: unknown, offset: unknown): void {
  checkAddress('lba', lba);
  checkCount('blocks', blocks);
  checkBuffer('buffer', buffer);
  checkAddress('offset', offset);
}
