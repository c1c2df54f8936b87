#!/usr/bin/env node
// DEVELOPMENT TOOL - a throwaway probe, not part of viommu and not used by its tests.
//
// Boots the guest built by scripts/guest/build-guest.mjs in v86 under Node, with a minimal NVMe 1.4
// controller written only to watch what Linux 6.1's nvme driver does: guest RAM is read and written
// directly (no IOMMU), everything is synchronous inside the MMIO handlers, one namespace lives in a
// Uint8Array. It logs every PCI config write to the device, every register access the driver makes until
// the first I/O command has completed (and every non-doorbell access after that), every admin command
// with its opcode, CNS / feature id and CDW10-15, and the completions it posts. It plays the host side of
// init.sh's serial protocol: "go" for each await, with the device's reads failing (or not completing)
// between "await read-revoked" and "await read-restored", and times the "mark" lines.
//
// Setup (inside the repository): node scripts/guest/build-guest.mjs
//                                npm install --no-save v86@0.5.462   (v86 is not a dependency of viommu)
// Run:   node scripts/guest/probe-nvme.mjs [options] > probe.log
//   --steps=a,b,...     viommu.steps for init.sh (default: init.sh's own list)
//   --mib=N --bench-mib=N   sizes for init.sh
//   --fault=dte|dte-dnr|drop|none   what reads do while revoked (default dte: status Data Transfer Error 0x4)
//   --abort=ignore|complete  Abort command: leave the command alone (default) or complete it as aborted
//   --pci-id=VVVV:DDDD  vendor:device (default 1b36:0010, QEMU's NVMe, which Linux quirks as BOGUS_NID)
//   --mdts=N  --queues=N  --disk-mib=N  --vwc=0|1  --oaes=HEX  --ver=1.4|1.3|1.2|1.0  --no-ids
//   --append="..."     more kernel command-line text   --timeout=S   --verbose (log every I/O command)
// The guest comes from VIOMMU_GUEST_DIR when set, otherwise from .guest/ at the repository root.
//
// What it showed (Linux 6.1.0 686, v86 0.5.462), in short:
// - Raising/lowering INTx from inside an MMIO handler must not let v86 deliver the interrupt there and
//   then (device_raise_irq ends in handle_irqs): the guest oopsed with EIP in a data page. updateIrq()
//   holds IF clear around the PIC call; the level must also drop as soon as the CQs are drained.
// - Linux uses neither INTMS/INTMC nor the Command register's Interrupt Disable bit with INTx.
// - insmod ignores nvme_core.* on the kernel command line; init.sh passes such words to insmod.
// - 1b36:0010 (QEMU's ids) gets NVME_QUIRK_BOGUS_NID: NGUID/EUI64 ignored ("Ignoring bogus Namespace
//   Identifiers"); any other id matches the driver's class entry (01 08 02) without quirks.
// - A read completed with Data Transfer Error (no DNR) is retried 5 times, then EIO; with DNR, EIO at once.
//   A command never completed: Abort after io_timeout; if the controller answers "not aborted", a controller
//   reset after a second io_timeout; a command lost again during that reset gets the controller disabled
//   and the namespace removed. Completing the aborted command (status 0x7) leads to 5 retries, then EIO.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const GUEST = process.env.VIOMMU_GUEST_DIR ? path.resolve(process.env.VIOMMU_GUEST_DIR) : path.join(ROOT, '.guest');
const V86_DIR = path.join(ROOT, 'node_modules', 'v86', 'build');

const opt = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`bad argument ${a}`);
    return [m[1], m[2] ?? true];
  }),
);
const num = (k, d) => (opt[k] === undefined ? d : Number(opt[k]));
const FAULT = opt.fault ?? 'dte';
const ABORT = opt.abort ?? 'ignore';
const MDTS = num('mdts', 7);
const MAX_QUEUES = num('queues', 4);
const DISK_BYTES = num('disk-mib', 64) * 1024 * 1024;
const VWC = num('vwc', 1);
const OAES = opt.oaes !== undefined ? parseInt(opt.oaes, 16) : 0x100;
const VER = { 1.4: 0x00010400, 1.3: 0x00010300, 1.2: 0x00010200, '1.0': 0x00010000 }[opt.ver ?? '1.4'];
const VERBOSE = Boolean(opt.verbose);
const TIMEOUT_S = num('timeout', 900);
const [PCI_VENDOR, PCI_DEVICE] = (opt['pci-id'] ?? '1b36:0010').split(':').map((x) => parseInt(x, 16));

for (const f of ['bzImage', 'initrd.gz', 'bios.bin', 'vgabios.bin']) {
  if (!fs.existsSync(path.join(GUEST, f))) {
    console.error(`probe: ${path.join(GUEST, f)} is missing: run node scripts/guest/build-guest.mjs first`);
    process.exit(1);
  }
}
if (!fs.existsSync(path.join(V86_DIR, 'libv86.mjs'))) {
  console.error('probe: v86 is missing: run npm install --no-save v86@0.5.462 in the repository');
  process.exit(1);
}
const { V86 } = await import(pathToFileURL(path.join(V86_DIR, 'libv86.mjs')).href);

const T0 = performance.now();
const ts = () => ((performance.now() - T0) / 1000).toFixed(3).padStart(8);
const log = (s) => console.log(`[${ts()}] ${s}`);
const hex = (v, w = 0) => `0x${(v >>> 0).toString(16).padStart(w, '0')}`;
const hex64 = (v) => `0x${v.toString(16)}`;

// ------------------------------------------------------------------------------------------------ device

const BAR = 0xfe000000;
const BAR_SIZE = 0x4000;
const PCI_ID = 7 << 3; // 00:07.0
const MQES = 1023;
const PAGE = 4096;
const LBA = 512;
const NSZE = DISK_BYTES / LBA;

const OPC_ADMIN = {
  0: 'Delete I/O SQ',
  1: 'Create I/O SQ',
  2: 'Get Log Page',
  4: 'Delete I/O CQ',
  5: 'Create I/O CQ',
  6: 'Identify',
  8: 'Abort',
  9: 'Set Features',
  10: 'Get Features',
  12: 'Async Event Request',
  13: 'Namespace Management',
  16: 'Firmware Commit',
  17: 'Firmware Download',
  21: 'NS Attachment',
  24: 'Keep Alive',
  25: 'Directive Send',
  26: 'Directive Receive',
  124: 'Doorbell Buffer Config',
  128: 'Format NVM',
  129: 'Security Send',
  130: 'Security Receive',
};
const OPC_IO = { 0: 'Flush', 1: 'Write', 2: 'Read', 4: 'Write Uncorrectable', 5: 'Compare', 8: 'Write Zeroes', 9: 'Dataset Management' };
const FEATURES = {
  1: 'Arbitration',
  2: 'Power Management',
  3: 'LBA Range Type',
  4: 'Temperature Threshold',
  5: 'Error Recovery',
  6: 'Volatile Write Cache',
  7: 'Number of Queues',
  8: 'Interrupt Coalescing',
  9: 'Interrupt Vector Configuration',
  10: 'Write Atomicity Normal',
  11: 'Asynchronous Event Configuration',
  12: 'Autonomous Power State Transition',
  13: 'Host Memory Buffer',
  14: 'Timestamp',
  15: 'Keep Alive Timer',
  16: 'Host Controlled Thermal Management',
  22: 'Host Behavior Support',
  128: 'Software Progress Marker',
};
const REG = {
  0: 'CAP.lo',
  4: 'CAP.hi',
  8: 'VS',
  12: 'INTMS',
  16: 'INTMC',
  20: 'CC',
  28: 'CSTS',
  32: 'NSSR',
  36: 'AQA',
  40: 'ASQ.lo',
  44: 'ASQ.hi',
  48: 'ACQ.lo',
  52: 'ACQ.hi',
  56: 'CMBLOC',
  60: 'CMBSZ',
  64: 'BPINFO',
  68: 'BPRSEL',
  72: 'BPMBL.lo',
  76: 'BPMBL.hi',
  80: 'CMBMSC.lo',
  84: 'CMBMSC.hi',
  88: 'CMBSTS',
  3584: 'PMRCAP',
  3588: 'PMRCTL',
  3592: 'PMRSTS',
};
const regName = (o) => REG[o] ?? (o >= 0x1000 ? `DB ${(o - 0x1000) >> 3}${((o - 0x1000) >> 2) & 1 ? ' CQ head' : ' SQ tail'}` : hex(o, 3));

// status codes: [sct, sc]
const SC = {
  OK: [0, 0x00],
  INVALID_OPCODE: [0, 0x01],
  INVALID_FIELD: [0, 0x02],
  DATA_TRANSFER_ERROR: [0, 0x04],
  ABORT_REQUESTED: [0, 0x07],
  INVALID_NS: [0, 0x0b],
  PRP_OFFSET_INVALID: [0, 0x13],
  LBA_OUT_OF_RANGE: [0, 0x80],
  CQ_INVALID: [1, 0x00],
  INVALID_QID: [1, 0x01],
  INVALID_QSIZE: [1, 0x02],
  INVALID_LOG_PAGE: [1, 0x09],
  FEATURE_NOT_SAVEABLE: [1, 0x0d],
};
const scName = (s) => Object.keys(SC).find((k) => SC[k][0] === s[0] && SC[k][1] === s[1]) ?? `sct ${s[0]} sc ${hex(s[1])}`;

const stats = {
  regLog: 0,
  doorbells: 0,
  irqRaise: 0,
  irqLower: 0,
  io: { 0: 0, 1: 0, 2: 0 },
  ioBytes: { 1: 0, 2: 0 },
  prpLists: 0,
  maxXfer: 0,
  faults: 0,
  held: 0,
  adminCmds: 0,
  xferHist: new Map(),
};

class ProbeNvme {
  constructor(cpu, pci) {
    this.cpu = cpu;
    this.pci = pci;
    this.disk = new Uint8Array(DISK_BYTES);
    this.ram = null;
    this.ramSize = cpu.memory_size[0];
    this.cc = 0;
    this.csts = 0;
    this.aqa = 0;
    this.asq = [0, 0];
    this.acq = [0, 0];
    this.intms = 0;
    this.sqs = new Map();
    this.cqs = new Map();
    this.aers = [];
    this.held = []; // commands deliberately not completed: {sqid, cid, opc}
    this.features = new Map([
      [0x04, 0x157],
      [0x06, VWC],
      [0x07, ((MAX_QUEUES - 1) << 16) | (MAX_QUEUES - 1)],
    ]);
    this.irqLevel = false; // what the PIC has been told
    this.newEntries = false;
    this.intxDisabled = false;
    this.busMaster = false;
    this.memEnabled = false;
    this.firstIoDone = false;
    this.revoked = false;
  }

  // guest RAM, taken once (cpu.mem8 is a Proxy that builds a new view on each access)
  mem() {
    if (!this.ram || this.ram.buffer !== this.cpu.wasm_memory.buffer) {
      const p = this.cpu.mem8;
      this.ram = new Uint8Array(this.cpu.wasm_memory.buffer, p.byteOffset, p.length);
    }
    return this.ram;
  }

  inRam(addr, len) {
    return addr >= 0 && len >= 0 && addr + len <= this.ramSize;
  }
  rd32(a) {
    const m = this.mem();
    return (m[a] | (m[a + 1] << 8) | (m[a + 2] << 16) | (m[a + 3] << 24)) >>> 0;
  }
  wr32(a, v) {
    const m = this.mem();
    m[a] = v;
    m[a + 1] = v >>> 8;
    m[a + 2] = v >>> 16;
    m[a + 3] = v >>> 24;
  }
  rd64(a) {
    return this.rd32(a) + this.rd32(a + 4) * 0x100000000;
  }
  // device -> guest RAM: the JIT must forget code compiled from these pages (v86's write_blob does the same)
  toRam(addr, bytes) {
    this.cpu.jit_dirty_cache(addr, addr + bytes.length);
    this.mem().set(bytes, addr);
  }
  fromRam(addr, len) {
    return this.mem().subarray(addr, addr + len);
  }

  logReg(dir, off, val, size = 32) {
    const quiet = this.firstIoDone && off >= 0x1000;
    if (off >= 0x1000) stats.doorbells += dir === 'W' ? 1 : 0;
    if (quiet) return;
    stats.regLog++;
    log(`reg ${dir}${size} ${regName(off).padEnd(14)} ${dir === 'W' ? '<-' : '->'} ${hex(val, 8)}`);
  }

  read32(addr) {
    const off = (addr >>> 0) - BAR;
    let v = 0;
    switch (off) {
      case 0x00:
        v = MQES | (1 << 16) | (10 << 24);
        break; // MQES 1023, CQR, TO 10 (5 s)
      case 0x04:
        v = 1 << 5;
        break; // CSS bit 37: NVM command set; DSTRD 0, MPSMIN/MPSMAX 0 (4 KiB)
      case 0x08:
        v = VER;
        break;
      case 0x0c:
      case 0x10:
        v = this.intms;
        break;
      case 0x14:
        v = this.cc;
        break;
      case 0x1c:
        v = this.csts;
        break;
      case 0x24:
        v = this.aqa;
        break;
      case 0x28:
        v = this.asq[0];
        break;
      case 0x2c:
        v = this.asq[1];
        break;
      case 0x30:
        v = this.acq[0];
        break;
      case 0x34:
        v = this.acq[1];
        break;
      default:
        v = 0;
    }
    this.logReg('R', off, v);
    return v | 0;
  }

  write32(addr, value) {
    const off = (addr >>> 0) - BAR;
    const v = value >>> 0;
    this.logReg('W', off, v);
    if (off >= 0x1000 && off < BAR_SIZE) return this.doorbell(off, v);
    switch (off) {
      case 0x0c:
        this.intms = (this.intms | v) >>> 0;
        this.updateIrq('INTMS');
        break;
      case 0x10:
        this.intms = (this.intms & ~v) >>> 0;
        this.updateIrq('INTMC');
        break;
      case 0x14:
        this.setCc(v);
        break;
      case 0x20:
        if (v === 0x4e564d65) {
          log('NSSR: NVM subsystem reset');
          this.reset();
        }
        break;
      case 0x24:
        this.aqa = v;
        break;
      case 0x28:
        this.asq[0] = v;
        break;
      case 0x2c:
        this.asq[1] = v;
        break;
      case 0x30:
        this.acq[0] = v;
        break;
      case 0x34:
        this.acq[1] = v;
        break;
      default:
        log(`write to unhandled register ${hex(off, 3)}`);
    }
  }

  read8(addr) {
    const off = (addr >>> 0) - BAR;
    log(`reg R8 ${hex(off, 3)} (byte access)`);
    return (this.read32(BAR + (off & ~3)) >>> ((off & 3) * 8)) & 0xff;
  }

  write8(addr, v) {
    log(`reg W8 ${hex((addr >>> 0) - BAR, 3)} <- ${hex(v, 2)} (byte access, ignored)`);
  }

  setCc(v) {
    const old = this.cc;
    this.cc = v;
    const f = (s, w) => (v >>> s) & ((1 << w) - 1);
    log(`CC: EN ${v & 1} CSS ${f(4, 3)} MPS ${f(7, 4)} AMS ${f(11, 3)} SHN ${f(14, 2)} IOSQES ${f(16, 4)} IOCQES ${f(20, 4)}`);
    if (f(14, 2) && !((old >>> 14) & 3)) {
      log('CC.SHN: shutdown requested -> CSTS.SHST = complete');
      this.csts = (this.csts & ~0xc) | (2 << 2);
    }
    if (v & 1 && !(old & 1)) {
      if (f(7, 4) !== 0) log(`!! CC.MPS ${f(7, 4)} unsupported`);
      const asq = this.asq[0] + this.asq[1] * 0x100000000;
      const acq = this.acq[0] + this.acq[1] * 0x100000000;
      const sqs = (this.aqa & 0xfff) + 1;
      const cqs = ((this.aqa >>> 16) & 0xfff) + 1;
      log(`enable: admin SQ ${hex64(asq)} x${sqs}, admin CQ ${hex64(acq)} x${cqs}`);
      this.cqs.set(0, { id: 0, base: acq, size: cqs, head: 0, tail: 0, phase: 1, ien: true, iv: 0 });
      this.sqs.set(0, { id: 0, base: asq, size: sqs, head: 0, tail: 0, cqid: 0 });
      this.csts = (this.csts & ~0xd) | 1; // RDY, SHST cleared
    } else if (!(v & 1) && old & 1) {
      log('disable: controller reset (queues dropped)');
      this.reset();
    }
  }

  reset() {
    if (this.held.length || this.aers.length) log(`reset drops ${this.held.length} held command(s) and ${this.aers.length} AER(s)`);
    this.sqs.clear();
    this.cqs.clear();
    this.aers = [];
    this.held = [];
    this.intms = 0;
    this.csts &= ~1;
    this.updateIrq('reset');
  }

  doorbell(off, v) {
    const idx = (off - 0x1000) >> 2;
    const qid = idx >> 1;
    if (idx & 1) {
      const cq = this.cqs.get(qid);
      if (!cq) return log(`!! CQ head doorbell for missing CQ ${qid}`);
      if (v >= cq.size) log(`!! CQ ${qid} head ${v} >= size ${cq.size}`);
      cq.head = v;
      this.updateIrq();
    } else {
      const sq = this.sqs.get(qid);
      if (!sq) return log(`!! SQ tail doorbell for missing SQ ${qid}`);
      if (v >= sq.size) log(`!! SQ ${qid} tail ${v} >= size ${sq.size}`);
      sq.tail = v;
      this.processSq(sq);
    }
  }

  processSq(sq) {
    if (!this.busMaster) log('!! commands submitted while Bus Master Enable is 0');
    while (sq.head !== sq.tail) {
      const a = sq.base + sq.head * 64;
      sq.head = (sq.head + 1) % sq.size;
      if (!this.inRam(a, 64)) {
        log(`!! SQE at ${hex64(a)} outside RAM`);
        continue;
      }
      const cmd = {
        sqid: sq.id,
        opc: this.mem()[a],
        fuse: this.mem()[a + 1] & 3,
        psdt: (this.mem()[a + 1] >> 6) & 3,
        cid: this.rd32(a) >>> 16,
        nsid: this.rd32(a + 4),
        prp1: this.rd64(a + 24),
        prp2: this.rd64(a + 32),
        cdw: [10, 11, 12, 13, 14, 15].map((i) => this.rd32(a + i * 4)),
      };
      const r = sq.id === 0 ? this.admin(cmd) : this.io(cmd);
      if (r) this.complete(sq, cmd.cid, r.status ?? SC.OK, r.dw0 ?? 0, r.dnr ?? false, r.quiet);
    }
  }

  complete(sq, cid, status, dw0 = 0, dnr = false, quiet = false) {
    const cq = this.cqs.get(sq.cqid);
    if (!cq) return log(`!! completion for SQ ${sq.id}: CQ ${sq.cqid} missing`);
    if ((cq.tail + 1) % cq.size === cq.head) log(`!! CQ ${cq.id} full`);
    const a = cq.base + cq.tail * 16;
    const e = new Uint8Array(16);
    const dv = new DataView(e.buffer);
    dv.setUint32(0, dw0 >>> 0, true);
    dv.setUint32(8, (sq.head | (sq.id << 16)) >>> 0, true);
    dv.setUint32(12, (cid | (cq.phase << 16) | (status[1] << 17) | (status[0] << 25) | (dnr ? 1 << 31 : 0)) >>> 0, true);
    this.toRam(a, e);
    cq.tail = (cq.tail + 1) % cq.size;
    if (cq.tail === 0) cq.phase ^= 1;
    this.newEntries = true;
    if (!quiet || status !== SC.OK) {
      log(`  -> completion sq ${sq.id} cid ${cid}: ${scName(status)}${dnr ? ' DNR' : ''} dw0 ${hex(dw0, 8)} (sqhd ${sq.head}, cq ${cq.id} tail ${cq.tail})`);
    }
    this.updateIrq();
  }

  completeByCid(sqid, cid, status, dw0 = 0) {
    const sq = this.sqs.get(sqid);
    if (sq) this.complete(sq, cid, status, dw0);
  }

  // Applies the INTx level to v86's PIC at once, but with the guest's IF flag held clear meanwhile:
  // device_raise_irq/device_lower_irq end in handle_irqs, which with IF=1 delivers a pending interrupt on
  // the spot; called from an MMIO or port handler that is the middle of a guest instruction, and the
  // guest's state is corrupted (seen: kernel oops with EIP in a data page). With IF clear the PIC only
  // records the request, and v86 delivers it at its next check (sti/popf/iret, hlt, main-loop slice end).
  // A level that stays high must still drop as soon as the CQs are drained: in ELCR (level) mode the PIC
  // keeps IRR set and re-fires after each EOI until the line is lowered.
  updateIrq(why) {
    let pending = false;
    for (const cq of this.cqs.values()) if (cq.ien && cq.head !== cq.tail) pending = true;
    const want = pending && !(this.intms & 1) && !this.intxDisabled;
    if (why === 'INTMS' || why === 'INTMC') log(`${why}: mask now ${hex(this.intms)} (pending ${pending})`);
    if (want === this.irqLevel && !(want && this.newEntries)) return;
    const flags = this.cpu.flags;
    const f = flags[0];
    flags[0] = f & ~0x200;
    try {
      if (want) {
        if (!this.irqLevel) stats.irqRaise++;
        else this.pci.lower_irq(PCI_ID); // a fresh edge for the new entries (edge-mode PIC)
        this.pci.raise_irq(PCI_ID);
      } else {
        stats.irqLower++;
        this.pci.lower_irq(PCI_ID);
      }
    } finally {
      flags[0] = flags[0] | (f & 0x200);
    }
    this.irqLevel = want;
    this.newEntries = false;
  }

  // -------------------------------------------------------------------------------------------- admin

  admin(c) {
    stats.adminCmds++;
    const name = OPC_ADMIN[c.opc] ?? '?';
    let extra = '';
    if (c.opc === 0x06) extra = ` CNS ${c.cdw[0] & 0xff} CNTID ${c.cdw[0] >>> 16}`;
    if (c.opc === 0x09 || c.opc === 0x0a)
      extra = ` FID ${hex(c.cdw[0] & 0xff, 2)} (${FEATURES[c.cdw[0] & 0xff] ?? '?'})${c.opc === 0x0a ? ` SEL ${(c.cdw[0] >> 8) & 7}` : ` SV ${c.cdw[0] >>> 31}`}`;
    if (c.opc === 0x02) extra = ` LID ${hex(c.cdw[0] & 0xff, 2)} NUMD ${((c.cdw[0] >>> 16) | ((c.cdw[1] & 0xffff) << 16)) + 1}`;
    log(
      `admin cid ${c.cid} opc ${hex(c.opc, 2)} ${name}${extra} nsid ${hex(c.nsid)} cdw10-15 [${c.cdw.map((x) => hex(x)).join(' ')}] prp1 ${hex64(c.prp1)} prp2 ${hex64(c.prp2)}${c.fuse || c.psdt ? ` fuse ${c.fuse} psdt ${c.psdt}` : ''}`,
    );
    switch (c.opc) {
      case 0x06:
        return this.identify(c);
      case 0x09:
        return this.setFeatures(c);
      case 0x0a:
        return this.getFeatures(c);
      case 0x02:
        return this.getLogPage(c);
      case 0x05:
        return this.createCq(c);
      case 0x01:
        return this.createSq(c);
      case 0x04:
        return this.deleteCq(c);
      case 0x00:
        return this.deleteSq(c);
      case 0x0c:
        this.aers.push(c.cid);
        log(`  (AER held: ${this.aers.length} outstanding)`);
        return null;
      case 0x08:
        return this.abort(c);
      case 0x18:
        return {};
      default:
        return { status: SC.INVALID_OPCODE, dnr: true };
    }
  }

  // writes `data` to the buffer described by PRP1/PRP2 (admin data, at most 2 pages)
  dmaOut(c, data) {
    const segs = this.prpSegments(c.prp1, c.prp2, data.length);
    if (!segs.ok) return { status: segs.status };
    let o = 0;
    for (const [a, n] of segs.list) {
      this.toRam(a, data.subarray(o, o + n));
      o += n;
    }
    return {};
  }

  identify(c) {
    const cns = c.cdw[0] & 0xff;
    const d = new Uint8Array(4096);
    const dv = new DataView(d.buffer);
    const str = (off, len, s) => {
      for (let i = 0; i < len; i++) d[off + i] = i < s.length ? s.charCodeAt(i) : 0x20;
    };
    switch (cns) {
      case 0x01: {
        // controller
        dv.setUint16(0, 0x1b36, true); // VID
        dv.setUint16(2, 0x1af4, true); // SSVID
        str(4, 20, 'VIOMMUPROBE0001');
        str(24, 40, 'viommu probe NVMe controller');
        str(64, 8, '0.1');
        d[72] = 6; // RAB
        d[73] = 0x00;
        d[74] = 0x54;
        d[75] = 0x52; // IEEE OUI
        d[77] = MDTS;
        dv.setUint16(78, 0, true); // CNTLID
        dv.setUint32(80, VER, true);
        dv.setUint32(92, OAES, true);
        dv.setUint32(96, 0, true); // CTRATT
        d[111] = 1; // CNTRLTYPE: I/O controller
        dv.setUint16(256, 0, true); // OACS: nothing optional (no doorbell buffer config, no NS management)
        d[258] = 3; // ACL (0-based)
        d[259] = 3; // AERL (0-based)
        d[260] = 0x02; // FRMW: 1 slot
        d[261] = 0; // LPA
        d[262] = 0; // ELPE
        d[263] = 0; // NPSS (0-based)
        dv.setUint16(266, 0x157, true); // WCTEMP
        dv.setUint16(268, 0x175, true); // CCTEMP
        d[512] = 0x66; // SQES
        d[513] = 0x44; // CQES
        dv.setUint32(516, 1, true); // NN
        dv.setUint16(520, 0, true); // ONCS
        d[525] = VWC; // VWC
        dv.setUint32(536, 0, true); // SGLS: none
        const nqn = 'nqn.2019-08.org.qemu:viommu-probe';
        for (let i = 0; i < nqn.length; i++) d[768 + i] = nqn.charCodeAt(i); // SUBNQN
        dv.setUint16(2048, 2500, true); // PSD0 MP
        break;
      }
      case 0x00: {
        // namespace
        if (c.nsid !== 1) return { status: SC.INVALID_NS, dnr: true };
        dv.setBigUint64(0, BigInt(NSZE), true);
        dv.setBigUint64(8, BigInt(NSZE), true);
        dv.setBigUint64(16, BigInt(NSZE), true);
        d[25] = 0; // NLBAF (0-based)
        d[26] = 0; // FLBAS
        if (!opt['no-ids']) {
          for (let i = 0; i < 16; i++) d[104 + i] = 0x10 + i; // NGUID
          for (let i = 0; i < 8; i++) d[120 + i] = 0x50 + i; // EUI64
        }
        dv.setUint32(128, 9 << 16, true); // LBAF0: MS 0, LBADS 9 (512 B)
        break;
      }
      case 0x02: {
        // active namespace ID list
        if (c.nsid < 1) dv.setUint32(0, 1, true);
        break;
      }
      case 0x03: {
        // namespace identification descriptors
        if (c.nsid !== 1) return { status: SC.INVALID_NS, dnr: true };
        if (!opt['no-ids']) {
          d[0] = 1;
          d[1] = 8;
          for (let i = 0; i < 8; i++) d[4 + i] = 0x50 + i; // EUI64
          d[12] = 2;
          d[13] = 16;
          for (let i = 0; i < 16; i++) d[16 + i] = 0x10 + i; // NGUID
        }
        break;
      }
      default:
        return { status: SC.INVALID_FIELD, dnr: true };
    }
    return this.dmaOut(c, d);
  }

  setFeatures(c) {
    const fid = c.cdw[0] & 0xff;
    const v = c.cdw[1];
    if (c.cdw[0] >>> 31) return { status: SC.FEATURE_NOT_SAVEABLE, dnr: true };
    switch (fid) {
      case 0x07: {
        const nsq = (v & 0xffff) + 1;
        const ncq = (v >>> 16) + 1;
        log(`  Number of Queues requested: ${nsq} SQ, ${ncq} CQ; allocated ${MAX_QUEUES}/${MAX_QUEUES}`);
        return { dw0: this.features.get(0x07) };
      }
      case 0x01:
      case 0x02:
      case 0x04:
      case 0x05:
      case 0x06:
      case 0x08:
      case 0x09:
      case 0x0a:
      case 0x0b:
        this.features.set(fid, v);
        return {};
      default:
        return { status: SC.INVALID_FIELD, dnr: true };
    }
  }

  getFeatures(c) {
    const fid = c.cdw[0] & 0xff;
    if (!FEATURES[fid] || fid > 0x0b) return { status: SC.INVALID_FIELD, dnr: true };
    return { dw0: this.features.get(fid) ?? 0 };
  }

  getLogPage(c) {
    const lid = c.cdw[0] & 0xff;
    const numd = ((c.cdw[0] >>> 16) | ((c.cdw[1] & 0xffff) << 16)) + 1;
    if (![0x01, 0x02, 0x03].includes(lid)) return { status: SC.INVALID_LOG_PAGE, dnr: true };
    const d = new Uint8Array(numd * 4);
    if (lid === 0x02 && d.length >= 3) {
      d[1] = 310 & 0xff;
      d[2] = 310 >> 8;
    } // composite temperature 310 K
    return this.dmaOut(c, d);
  }

  createCq(c) {
    const qid = c.cdw[0] & 0xffff;
    const size = (c.cdw[0] >>> 16) + 1;
    const pc = c.cdw[1] & 1;
    const ien = Boolean(c.cdw[1] & 2);
    const iv = c.cdw[1] >>> 16;
    log(`  Create I/O CQ ${qid}: ${size} entries at ${hex64(c.prp1)} PC ${pc} IEN ${+ien} IV ${iv}`);
    if (qid === 0 || qid > MAX_QUEUES || this.cqs.has(qid)) return { status: SC.INVALID_QID, dnr: true };
    if (size < 2 || size > MQES + 1) return { status: SC.INVALID_QSIZE, dnr: true };
    if (!pc) return { status: SC.INVALID_FIELD, dnr: true };
    this.cqs.set(qid, { id: qid, base: c.prp1, size, head: 0, tail: 0, phase: 1, ien, iv });
    return {};
  }

  createSq(c) {
    const qid = c.cdw[0] & 0xffff;
    const size = (c.cdw[0] >>> 16) + 1;
    const cqid = c.cdw[1] >>> 16;
    log(`  Create I/O SQ ${qid}: ${size} entries at ${hex64(c.prp1)} PC ${c.cdw[1] & 1} QPRIO ${(c.cdw[1] >> 1) & 3} CQID ${cqid}`);
    if (qid === 0 || qid > MAX_QUEUES || this.sqs.has(qid)) return { status: SC.INVALID_QID, dnr: true };
    if (!this.cqs.has(cqid) || cqid === 0) return { status: SC.CQ_INVALID, dnr: true };
    if (size < 2 || size > MQES + 1) return { status: SC.INVALID_QSIZE, dnr: true };
    this.sqs.set(qid, { id: qid, base: c.prp1, size, head: 0, tail: 0, cqid });
    return {};
  }

  deleteSq(c) {
    const qid = c.cdw[0] & 0xffff;
    if (!this.sqs.has(qid) || qid === 0) return { status: SC.INVALID_QID, dnr: true };
    const gone = this.held.filter((h) => h.sqid === qid);
    if (gone.length) log(`  deleting SQ ${qid} with ${gone.length} held command(s): they are dropped`);
    this.held = this.held.filter((h) => h.sqid !== qid);
    this.sqs.delete(qid);
    return {};
  }

  deleteCq(c) {
    const qid = c.cdw[0] & 0xffff;
    if (!this.cqs.has(qid) || qid === 0) return { status: SC.INVALID_QID, dnr: true };
    this.cqs.delete(qid);
    this.updateIrq();
    return {};
  }

  abort(c) {
    const sqid = c.cdw[0] & 0xffff;
    const cid = c.cdw[0] >>> 16;
    const i = this.held.findIndex((h) => h.sqid === sqid && h.cid === cid);
    log(`  Abort sq ${sqid} cid ${cid}: ${i >= 0 ? 'command is held here' : 'command not outstanding'}; policy ${ABORT}`);
    if (i >= 0 && ABORT === 'complete') {
      this.held.splice(i, 1);
      this.completeByCid(sqid, cid, SC.ABORT_REQUESTED);
      return { dw0: 0 }; // aborted
    }
    return { dw0: 1 }; // not aborted
  }

  // -------------------------------------------------------------------------------------------- I/O

  prpSegments(prp1, prp2, len) {
    const list = [];
    const bad = (why, status = SC.DATA_TRANSFER_ERROR) => {
      log(`!! PRP: ${why}`);
      return { ok: false, status };
    };
    if (prp1 & 3) return bad(`PRP1 ${hex64(prp1)} not dword aligned`, SC.PRP_OFFSET_INVALID);
    let n = Math.min(len, PAGE - (prp1 % PAGE));
    list.push([prp1, n]);
    let left = len - n;
    if (left > 0) {
      if (left <= PAGE) {
        if (prp2 % PAGE) return bad(`PRP2 ${hex64(prp2)} has an offset`, SC.PRP_OFFSET_INVALID);
        list.push([prp2, left]);
      } else {
        stats.prpLists++;
        let lp = prp2;
        if (lp & 7) return bad(`PRP list ${hex64(lp)} not qword aligned`, SC.PRP_OFFSET_INVALID);
        while (left > 0) {
          if (!this.inRam(lp, 8)) return bad(`PRP list entry ${hex64(lp)} outside RAM`);
          const e = this.rd64(lp);
          const last = (lp + 8) % PAGE === 0;
          if (last && left > PAGE) {
            lp = e;
            continue;
          } // chain to the next list page
          if (e % PAGE) return bad(`PRP entry ${hex64(e)} has an offset`, SC.PRP_OFFSET_INVALID);
          n = Math.min(left, PAGE);
          list.push([e, n]);
          left -= n;
          lp += 8;
        }
      }
    }
    for (const [a, k] of list) if (!this.inRam(a, k)) return bad(`buffer ${hex64(a)}+${k} outside RAM`);
    return { ok: true, list };
  }

  io(c) {
    const name = OPC_IO[c.opc] ?? '?';
    const slba = c.cdw[0] + c.cdw[1] * 0x100000000;
    const nlb = (c.cdw[2] & 0xffff) + 1;
    const bytes = nlb * LBA;
    const first = !this.firstIoDone;
    const loud = VERBOSE || first || this.revoked;
    if (loud) {
      log(
        `io sq ${c.sqid} cid ${c.cid} opc ${hex(c.opc, 2)} ${name} nsid ${c.nsid}${c.opc === 1 || c.opc === 2 ? ` slba ${slba} nlb ${nlb} (${bytes} B)` : ''} cdw10-15 [${c.cdw.map((x) => hex(x)).join(' ')}] prp1 ${hex64(c.prp1)} prp2 ${hex64(c.prp2)}`,
      );
    }
    if (first) {
      this.firstIoDone = true;
      log('(first I/O command: register and doorbell logging stops here, except non-doorbell registers)');
    }
    if (c.nsid !== 1 && c.opc !== 0x00) return { status: SC.INVALID_NS, dnr: true };
    stats.io[c.opc] = (stats.io[c.opc] ?? 0) + 1;
    switch (c.opc) {
      case 0x00:
        return { quiet: !loud };
      case 0x01:
      case 0x02: {
        if (slba + nlb > NSZE) return { status: SC.LBA_OUT_OF_RANGE, dnr: true };
        if (this.revoked && c.opc === 0x02 && FAULT !== 'none') {
          stats.faults++;
          if (FAULT === 'drop') {
            this.held.push({ sqid: c.sqid, cid: c.cid, opc: c.opc });
            stats.held++;
            log(`  (revoked: read cid ${c.cid} held, no completion)`);
            return null;
          }
          log(`  (revoked: read cid ${c.cid} fails with Data Transfer Error${FAULT === 'dte-dnr' ? ', DNR' : ''})`);
          return { status: SC.DATA_TRANSFER_ERROR, dnr: FAULT === 'dte-dnr' };
        }
        const segs = this.prpSegments(c.prp1, c.prp2, bytes);
        if (!segs.ok) return { status: segs.status };
        stats.ioBytes[c.opc] += bytes;
        stats.maxXfer = Math.max(stats.maxXfer, bytes);
        stats.xferHist.set(bytes, (stats.xferHist.get(bytes) ?? 0) + 1);
        let o = slba * LBA;
        for (const [a, n] of segs.list) {
          if (c.opc === 0x02) this.toRam(a, this.disk.subarray(o, o + n));
          else this.disk.set(this.fromRam(a, n), o);
          o += n;
        }
        return { quiet: !loud };
      }
      default:
        return { status: SC.INVALID_OPCODE, dnr: true };
    }
  }
}

// ------------------------------------------------------------------------------------------------ machine

const buf = (f) => {
  const b = fs.readFileSync(path.join(GUEST, f));
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};
const cmdline = ['console=ttyS0', 'loglevel=3', 'tsc=reliable', 'mitigations=off', 'nvme_core.admin_timeout=3', 'nvme_core.io_timeout=5'];
if (opt.steps) cmdline.push(`viommu.steps=${opt.steps}`);
if (opt.mib) cmdline.push(`viommu.mib=${opt.mib}`);
if (opt['bench-mib']) cmdline.push(`viommu.bench_mib=${opt['bench-mib']}`);
if (opt.append) cmdline.push(opt.append);
log(`guest ${GUEST === path.join(ROOT, '.guest') ? '.guest' : GUEST}; cmdline: ${cmdline.join(' ')}`);
log(
  `options: pci ${hex(PCI_VENDOR, 4)}:${hex(PCI_DEVICE, 4)}, fault ${FAULT}, abort ${ABORT}, MDTS ${MDTS}, queues ${MAX_QUEUES}, disk ${DISK_BYTES >> 20} MiB, VWC ${VWC}, OAES ${hex(OAES)}, VS ${hex(VER)}${opt['no-ids'] ? ', no namespace IDs' : ''}`,
);

const emulator = new V86({
  wasm_path: path.join(V86_DIR, 'v86.wasm'),
  bios: buf('bios.bin'),
  vga_bios: buf('vgabios.bin'),
  bzimage: buf('bzImage'),
  initrd: buf('initrd.gz'),
  cmdline: cmdline.join(' '),
  memory_size: 128 * 1024 * 1024,
  autostart: false,
  disable_speaker: true,
  disable_keyboard: true,
  disable_mouse: true,
});

let dev;
emulator.add_listener('emulator-loaded', () => {
  const cpu = emulator.v86.cpu;
  const pci = cpu.devices.pci;
  dev = new ProbeNvme(cpu, pci);

  const space = new Uint8Array(64);
  const dv = new DataView(space.buffer);
  dv.setUint16(0, PCI_VENDOR, true); // default 1b36:0010, QEMU's NVMe (Linux gives it NVME_QUIRK_BOGUS_NID)
  dv.setUint16(2, PCI_DEVICE, true);
  dv.setUint16(4, 0x0000, true); // command: the guest enables memory and bus mastering
  dv.setUint16(6, 0x0000, true); // status: no capabilities list (so no MSI/MSI-X/PM capability)
  space[8] = 2; // revision
  space[9] = 2;
  space[10] = 8;
  space[11] = 1; // class 01 08 02: NVMe
  dv.setUint32(0x10, BAR, true); // BAR0, 32-bit memory
  dv.setUint16(0x2c, 0x1af4, true); // subsystem vendor
  dv.setUint16(0x2e, 0x1100, true);
  space[0x3c] = 11;
  space[0x3d] = 1; // INTA
  pci.register_device({ name: 'probe-nvme', pci_id: PCI_ID, pci_space: Array.from(space), pci_bars: [{ size: BAR_SIZE }] });
  cpu.io.mmap_register(
    BAR,
    0x20000,
    (a) => dev.read8(a),
    (a, v) => dev.write8(a, v),
    (a) => dev.read32(a),
    (a, v) => dev.write32(a, v),
  );

  // v86 has no config-write callback: wrap the three writers and look at our function's Command register.
  const cmdReg = () => pci.device_spaces[PCI_ID][1] & 0xffff;
  for (const w of ['pci_write8', 'pci_write16', 'pci_write32']) {
    const orig = pci[w].bind(pci);
    pci[w] = (addr, value) => {
      const before = pci.device_spaces[PCI_ID] ? cmdReg() : 0;
      orig(addr, value);
      if (((addr >> 8) & 0xffff) !== PCI_ID) return;
      const reg = addr & 0xff;
      const size = { pci_write8: 1, pci_write16: 2, pci_write32: 4 }[w];
      log(`pci config write${size * 8} 00:07.0 [${hex(reg, 2)}] <- ${hex(value, size * 2)}`);
      if (reg <= 5 && reg + size > 4) {
        if (w === 'pci_write32' && reg === 4) {
          // v86 drops 32-bit writes at offset 4; keep the Command half as real hardware would
          const s16 = new Uint16Array(pci.device_spaces[PCI_ID].buffer);
          s16[2] = value & 0xffff;
        }
        const cmd = cmdReg();
        dev.memEnabled = Boolean(cmd & 2);
        dev.busMaster = Boolean(cmd & 4);
        const intxDisabled = Boolean(cmd & 0x400);
        log(`  Command ${hex(before, 4)} -> ${hex(cmd, 4)}: Memory ${+dev.memEnabled} BusMaster ${+dev.busMaster} INTxDisable ${+intxDisabled}`);
        if (intxDisabled !== dev.intxDisabled) {
          dev.intxDisabled = intxDisabled;
          dev.updateIrq();
        }
      }
    };
  }
  emulator.run();
});

// ------------------------------------------------------------------------------------------------ protocol

const marks = new Map();
const results = [];
let bootAt = null;
let readyAt = null;
let workloadStart = null;
let line = '';
const send = (s) => {
  log(`host -> guest: ${JSON.stringify(s)}`);
  emulator.serial0_send(s);
};

function onLine(l) {
  log(`serial: ${l}`);
  const m = /^VIOMMU (\S+)(?: (.*))?$/.exec(l);
  if (!m) return;
  const [, kind, rest = ''] = m;
  const now = performance.now();
  if (kind === 'boot') bootAt = now;
  if (kind === 'ready') {
    readyAt = now;
    workloadStart = now;
  }
  if (kind === 'result') results.push(rest);
  if (kind === 'await') {
    const step = rest.trim();
    if (step === 'read-revoked') {
      dev.revoked = true;
      log(`host: device access revoked (fault mode ${FAULT})`);
    }
    if (step === 'read-restored') {
      dev.revoked = false;
      log(`host: device access restored${dev.held.length ? ` (${dev.held.length} held command(s) still outstanding)` : ''}`);
    }
    send('go\n');
  }
  if (kind === 'mark') {
    const [name, edge, ...kv] = rest.split(' ');
    const attrs = Object.fromEntries(kv.map((s) => s.split('=')));
    if (edge === 'begin') marks.set(name, { t: now, bytes: Number(attrs.bytes), bs: attrs.bs });
    else if (marks.has(name)) {
      const b = marks.get(name);
      b.ms = now - b.t;
      b.rc = attrs.rc;
      log(
        `timing ${name}: ${(b.bytes / 1048576).toFixed(0)} MiB bs=${b.bs} in ${b.ms.toFixed(0)} ms = ${(b.bytes / 1048576 / (b.ms / 1000)).toFixed(2)} MiB/s, ${(b.bytes / (b.bs === '4k' ? 4096 : 1048576) / (b.ms / 1000)).toFixed(0)} dd blocks/s (rc ${b.rc})`,
      );
    }
  }
  if (kind === 'done') finish(0);
}

emulator.add_listener('serial0-output-byte', (b) => {
  const c = String.fromCharCode(b);
  if (c === '\n') {
    onLine(line);
    line = '';
  } else if (c !== '\r') line += c;
});

function finish(code) {
  const now = performance.now();
  log('---- summary');
  if (bootAt) log(`boot to /init: ${((bootAt - T0) / 1000).toFixed(1)} s (wall, from process start)`);
  if (readyAt && bootAt) log(`/init to ready (modules, driver probe, namespace): ${((readyAt - bootAt) / 1000).toFixed(1)} s`);
  if (workloadStart) log(`workload (ready to done): ${((now - workloadStart) / 1000).toFixed(1)} s`);
  log(`total: ${((now - T0) / 1000).toFixed(1)} s`);
  for (const r of results) log(`result ${r}`);
  for (const [n, b] of marks) if (b.ms !== undefined) log(`mark ${n}: ${b.ms.toFixed(0)} ms, ${(b.bytes / 1048576 / (b.ms / 1000)).toFixed(2)} MiB/s`);
  if (dev) {
    log(
      `admin commands ${stats.adminCmds}; I/O commands: flush ${stats.io[0]}, write ${stats.io[1]}, read ${stats.io[2]}; bytes written ${stats.ioBytes[1]}, read ${stats.ioBytes[2]}`,
    );
    log(
      `I/O transfer sizes: ${[...stats.xferHist]
        .sort((a, b) => a[0] - b[0])
        .map(([k, v]) => `${k}x${v}`)
        .join(' ')}; max ${stats.maxXfer}; commands using a PRP list ${stats.prpLists}`,
    );
    log(
      `doorbell writes ${stats.doorbells}; INTx asserted ${stats.irqRaise} times, deasserted ${stats.irqLower}; faults injected ${stats.faults}, held ${stats.held}; AERs outstanding ${dev.aers.length}`,
    );
    log(
      `queues at the end: ${[...dev.sqs.values()].map((q) => `SQ${q.id}x${q.size}->CQ${q.cqid}`).join(' ')} ${[...dev.cqs.values()].map((q) => `CQ${q.id}x${q.size}${q.ien ? ' IEN' : ''}`).join(' ')}`,
    );
  }
  emulator.stop();
  emulator.destroy?.();
  process.exit(code);
}

setTimeout(() => {
  log(`TIMEOUT after ${TIMEOUT_S} s; partial line: ${JSON.stringify(line)}`);
  finish(1);
}, TIMEOUT_S * 1000);
