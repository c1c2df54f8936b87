import type { RegisterFile } from '../../hardware/register-file.js';
import { NVME as R } from './nvme-registers.js';
import type { NvmeScratch } from './nvme-scratch.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

/**
 * The data structures the 'nvme' model returns (NVMe 1.4): Identify Controller, Identify
 * Namespace, the active namespace list and the namespace identification descriptors
 * (section 5.15), and the error, SMART / health and firmware slot log pages (5.14.1). Each
 * builder fills the function's scratch page and returns how many bytes of it are the
 * structure, or -1 (with the status in `status`) when there is no such structure.
 */

/** Bytes of each log page this controller has. */
const LOG_BYTES: Readonly<Record<number, number>> = {
  [R.LOG_ERROR_INFORMATION]: 64, // one entry (ELPE 0)
  [R.LOG_SMART_HEALTH]: 512,
  [R.LOG_FIRMWARE_SLOT]: 512,
};

/** Bytes of log page `lid`, or 0 for a log this controller does not have. */
export function logBytes(lid: number): number {
  return LOG_BYTES[lid] ?? 0;
}

/** Identify, CNS 00h-03h (others: Invalid Field). Returns SC_SUCCESS with the 4 KiB structure in scratch.page, or the status. */
export function buildIdentify(scratch: NvmeScratch, registers: RegisterFile, slot: number): number {
  const cns = scratch.dword(10) & 0xff;
  const nsid = scratch.dword(1);
  scratch.page.fill(0);
  switch (cns) {
    case R.CNS_CONTROLLER:
      identifyController(scratch, slot);
      return R.SC_SUCCESS;
    case R.CNS_NAMESPACE:
      if (nsid !== 1) return R.SC_INVALID_NAMESPACE;
      identifyNamespace(scratch, registers, slot);
      return R.SC_SUCCESS;
    case R.CNS_ACTIVE_NAMESPACES:
      // Namespaces with an NSID above CDW1's, in order: just NSID 1 when CDW1 is 0.
      if (nsid === 0xffff_fffe || nsid === 0xffff_ffff) return R.SC_INVALID_NAMESPACE;
      if (nsid < 1) scratch.pageView.setUint32(0, 1, true);
      return R.SC_SUCCESS;
    case R.CNS_NAMESPACE_DESCRIPTORS:
      if (nsid !== 1) return R.SC_INVALID_NAMESPACE;
      // One descriptor: NIDT 1 (IEEE EUI-64), NIDL 8, the namespace's EUI64 (as in Identify Namespace).
      scratch.page[0] = 1;
      scratch.page[1] = 8;
      writeEui64(scratch.pageView, 4, slot);
      return R.SC_SUCCESS;
    default:
      // CNS 06h (I/O command set specific controller) and everything newer: not supported.
      return R.SC_INVALID_FIELD;
  }
}

/** The EUI64 of the function in context slot `slot`: 7e57 (the vendor), the slot, then 1. */
function writeEui64(view: DataView, offset: number, slot: number): void {
  view.setUint32(offset, 0x7e57_0000 + slot, false);
  view.setUint32(offset + 4, 1, false);
}

function identifyController(scratch: NvmeScratch, slot: number): void {
  const page = scratch.page;
  const data = scratch.pageView;
  const serial = `VIOMMU-NVME-${slot.toString(16).padStart(4, '0')}`;
  data.setUint16(0, VIOMMU_VENDOR_ID, true); // VID
  data.setUint16(2, VIOMMU_VENDOR_ID, true); // SSVID
  ascii(page, 4, 20, serial); // SN
  ascii(page, 24, 40, 'viommu NVMe-like controller'); // MN
  ascii(page, 64, 8, '1.0'); // FR
  page[72] = 0; // RAB
  page[77] = R.MDTS;
  data.setUint16(78, 1, true); // CNTLID
  data.setUint32(80, R.VERSION, true); // VER
  data.setUint32(92, R.OAES, true); // OAES
  page[111] = 1; // CNTRLTYPE: I/O controller
  page[258] = R.ACL;
  page[259] = R.AERL;
  page[260] = 0x03; // FRMW: one firmware slot, slot 1 read-only
  page[261] = 0x04; // LPA: extended data for Get Log Page (NUMDU, LPOL/LPOU)
  page[262] = 0; // ELPE: one error log entry
  page[263] = 0; // NPSS: one power state
  data.setUint16(266, R.WCTEMP, true); // WCTEMP
  data.setUint16(268, R.CCTEMP, true); // CCTEMP
  page[512] = 0x66; // SQES: 64-byte entries
  page[513] = 0x44; // CQES: 16-byte entries
  data.setUint16(514, R.MQES + 1, true); // MAXCMD
  data.setUint32(516, 1, true); // NN
  page[525] = 1; // VWC: a volatile write cache, so drivers send Flush (the namespace is RAM: nothing to do)
  ascii(page, 768, 256, `nqn.2024-01.org.viommu:nvme:${serial}`, 0); // SUBNQN
  data.setUint16(2048, 2500, true); // PSD0 MP: 25.00 W
}

function identifyNamespace(scratch: NvmeScratch, registers: RegisterFile, slot: number): void {
  const data = scratch.pageView;
  const blocks = registers.read32(R.NAMESPACE_BLOCKS);
  data.setUint32(0, blocks, true); // NSZE
  data.setUint32(8, blocks, true); // NCAP
  data.setUint32(16, blocks, true); // NUSE
  scratch.page[25] = 0; // NLBAF: one format (zero-based)
  scratch.page[26] = 0; // FLBAS: format 0
  writeEui64(data, 120, slot); // EUI64
  data.setUint32(128, 9 << 16, true); // LBAF0: MS 0, LBADS 9 (512 bytes), RP 0
}

/** Log page `lid` into scratch.page (its first logBytes(lid) bytes). */
export function buildLog(scratch: NvmeScratch, registers: RegisterFile, lid: number): void {
  const page = scratch.page;
  const data = scratch.pageView;
  page.fill(0, 0, 512);
  if (lid === R.LOG_SMART_HEALTH) {
    page[0] = 0; // critical warning: none
    data.setUint16(1, R.TEMPERATURE_KELVIN, true); // composite temperature
    page[3] = 100; // available spare (%)
    page[4] = 10; // available spare threshold
    page[5] = 0; // percentage used
    // Data units are thousands of 512-byte units, rounded up.
    setU64(data, 32, Math.ceil(registers.read64(R.BLOCKS_READ) / 1000));
    setU64(data, 48, Math.ceil(registers.read64(R.BLOCKS_WRITTEN) / 1000));
    setU64(data, 64, registers.read32(R.READ_COMMANDS));
    setU64(data, 80, registers.read32(R.WRITE_COMMANDS));
    setU64(data, 112, 1); // power cycles
    data.setUint16(200, R.TEMPERATURE_KELVIN, true); // temperature sensor 1
  } else if (lid === R.LOG_FIRMWARE_SLOT) {
    page[0] = 1; // AFI: slot 1 active
    ascii(page, 8, 8, '1.0'); // FRS1
  }
  // LOG_ERROR_INFORMATION: one entry with error count 0, which marks it as empty.
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

/** An ASCII field padded with `pad` (spaces, as the spec wants for SN/MN/FR; 0 for NQNs). */
function ascii(page: Uint8Array, offset: number, length: number, text: string, pad = 0x20): void {
  for (let i = 0; i < length; i++) page[offset + i] = i < text.length ? text.charCodeAt(i) & 0x7f : pad;
}
