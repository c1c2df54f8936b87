import { DMA_OK } from '../../iommu/data-plane/dma-port.js';
import { NVME as R } from './nvme-registers.js';

/** PRP entries of a command at most: the MDTS limit plus the first, offset page. */
const MAX_SEGMENTS = (1 << R.MDTS) + 1;
const TWO_32 = 2 ** 32;

/**
 * The 'nvme' model's working memory (DeviceModel.createScratch): one per function and thread,
 * reused by every command, so that executing a command allocates nothing and the model keeps
 * nothing at module level. It holds the command being executed and what executing it
 * produced; nothing here outlives a command.
 */
export class NvmeScratch {
  /** The submission queue entry being executed. */
  readonly entry = new Uint8Array(R.SQ_ENTRY_BYTES);
  readonly #entryView = new DataView(this.entry.buffer);
  /** Completion DW0 (command specific; the fault type for SC_DATA_TRANSFER_ERROR). */
  dw0 = 0;
  /** Data bytes the command moved (for the batch's byte budget). */
  bytes = 0;
  /** What the last transfer ended with: DMA_OK, or the fault type (or DMA_BLOCKED) behind SC_DATA_TRANSFER_ERROR. */
  fault = DMA_OK;
  /** (iova, length) pairs of the command's data, as walkPrps built them. */
  readonly segments = new Float64Array(2 * MAX_SEGMENTS);
  segmentCount = 0;
  /** Where writes land before they reach the namespace (whole or not at all), and logs longer than a page are built. */
  staging = new Uint8Array(0);
  /** A data structure a command returns (Identify data, a log page), built here. */
  readonly page = new Uint8Array(R.PAGE);
  readonly pageView = new DataView(this.page.buffer);

  /** Forgets the previous command's outcome. */
  begin(): void {
    this.dw0 = 0;
    this.bytes = 0;
    this.fault = DMA_OK;
    this.segmentCount = 0;
  }

  /** Command dword `n` (CDW0, NSID = 1, ..., CDW10 = 10, ...). */
  dword(n: number): number {
    return this.#entryView.getUint32(4 * n, true);
  }

  get opcode(): number {
    return this.entry[0]!;
  }

  get prp1(): number {
    return this.dword(6) + this.dword(7) * TWO_32;
  }

  get prp2(): number {
    return this.dword(8) + this.dword(9) * TWO_32;
  }

  /** FUSE (CDW0 bits 9:8) or PSDT (bits 15:14) set: this controller does neither fused operations nor SGLs. */
  get unsupportedFlags(): boolean {
    return (this.dword(0) & 0xc300) !== 0;
  }

  /** `length` zeroed bytes of the staging area. */
  zeroed(length: number): Uint8Array {
    if (this.staging.length < length) this.staging = new Uint8Array(Math.max(length, 64 * 1024));
    const bytes = this.staging.subarray(0, length);
    bytes.fill(0);
    return bytes;
  }

  /** At least `length` bytes of the staging area (contents undefined). */
  stagingFor(length: number): Uint8Array {
    if (this.staging.length < length) this.staging = new Uint8Array(Math.max(length, 64 * 1024));
    return this.staging;
  }
}
