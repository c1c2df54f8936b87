import { Errors } from '../../base/errors.js';
import { PAGE_SIZE } from '../../base/numbers.js';
import type { GuestMemory } from '../../hardware/guest-memory.js';
import type { RegisterFile } from '../../hardware/register-file.js';
import { NIC as R } from '../models/nic.js';
import type { MappedBuffer } from './driver-base.js';

/** Options, types and helpers of NicDriver (devices/drivers/nic-driver.ts): option checks, guest copies, register readers. */

export interface NicDriverOptions {
  /** TX ring entries, a power of two (default 64). */
  txEntries?: number;
  /** RX ring entries, a power of two (default 64). */
  rxEntries?: number;
  /** Bytes of the buffer behind each TX ring entry: the largest fragment (default 2048). */
  txBufferBytes?: number;
  /** Bytes of each receive buffer (default 2048); a longer packet spans several. */
  rxBufferBytes?: number;
  /** Receive buffers to map (default and maximum rxEntries - 1). */
  rxBuffers?: number;
  /** How many of them start() posts (default all); postRxBuffers() posts the others. */
  postRxBuffers?: number;
  /** MSI vectors (defaults 1 and 2). */
  txVector?: number;
  rxVector?: number;
  /** Sends the device's packets back to itself (CTRL.LOOPBACK). */
  loopback?: boolean;
  /** Called with each packet received; without it, packets wait for receive(). */
  onPacket?: (packet: Uint8Array) => void;
}

export interface NicSendOptions {
  /**
   * Descriptors to split the packet over: a count (even split, at least what the TX buffer
   * size needs) or the fragment lengths themselves (summing to the packet's length; zero is
   * allowed).
   */
  fragments?: number | readonly number[];
}

/** Counters of the device (its registers). */
export interface NicStats {
  txPackets: number;
  txBytes: number;
  txErrors: number;
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  rxErrors: number;
}

/** A send waiting for ring space. */
export interface PendingSend {
  fragments: Uint8Array[];
  resolve: (status: number) => void;
  reject: (error: Error) => void;
}

/** A send posted to the device. */
export interface InFlightSend extends PendingSend {
  /** Free-running index of the packet's EOP descriptor. */
  last: number;
}

/** A data buffer of the driver: its own pages and their current mapping. */
export interface DmaBuffer {
  readonly pfns: number[];
  mapping: MappedBuffer;
  /** Unmapped on purpose (revokeTxBuffer/revokeRxBuffer); mapped again when its descriptor completes. */
  revoked: boolean;
}

export function ringEntries(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 2 || value > R.MAX_RING_ENTRIES || (value & (value - 1)) !== 0) {
    throw Errors.OptionOutOfRange(name, `a power of two in 2..${R.MAX_RING_ENTRIES}`, value);
  }
  return value;
}

export function bufferBytes(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 0xffff) throw Errors.OptionOutOfRange(name, 'an integer in 1..65535', value);
  return value;
}

/**
 * Fragment lengths for a packet of `length` bytes: `fragments` as given (checked), or a count
 * split evenly, raised to what TX buffers of `bufferBytes` need. At most `limit` descriptors.
 */
export function splitFragments(length: number, fragments: NicSendOptions['fragments'], bufferBytes: number, limit: number): number[] {
  if (Array.isArray(fragments)) {
    const lengths = fragments as readonly number[];
    const sum = lengths.reduce((total, n) => total + n, 0);
    if (lengths.length === 0 || lengths.length > limit || sum !== length || lengths.some((n) => !Number.isInteger(n) || n < 0 || n > bufferBytes)) {
      throw Errors.OptionOutOfRange('fragments', `1..${limit} lengths of 0..${bufferBytes} bytes summing to ${length}`, fragments);
    }
    return [...lengths];
  }
  const wanted = fragments ?? 1;
  if (typeof wanted !== 'number' || !Number.isInteger(wanted) || wanted < 1)
    throw Errors.OptionOutOfRange('fragments', 'a positive integer or an array of lengths', wanted);
  const count = Math.max(wanted, Math.ceil(length / bufferBytes), 1);
  if (count > limit) throw Errors.ArgumentOutOfRange('bytes', `a packet of at most ${limit} descriptors (${length} bytes need ${count})`, length);
  const base = Math.floor(length / count);
  return Array.from({ length: count }, (_, i) => base + (i < length % count ? 1 : 0));
}

/** Writes a TX or RX descriptor at guest physical `at`: buffer IOVA, the word of length and flags, and a clear status (the device's to set). */
export function writeDescriptor(memory: GuestMemory, at: number, iova: number, word: number): void {
  memory.writeU64(at, iova);
  memory.writeU32(at + 8, word);
  memory.writeU32(at + 12, 0);
}

/** Copies `bytes` into a mapped buffer at `offset` (the CPU's view), page by page. */
export function writeGuest(memory: GuestMemory, buffer: MappedBuffer, offset: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) {
    const at = offset + done;
    const n = Math.min(PAGE_SIZE - (at % PAGE_SIZE), bytes.length - done);
    memory.write(buffer.physical(at), bytes.subarray(done, done + n));
    done += n;
  }
}

/** A copy of `length` bytes of a mapped buffer from `offset`, page by page. */
export function readGuest(memory: GuestMemory, buffer: MappedBuffer, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let done = 0; done < length; ) {
    const at = offset + done;
    const n = Math.min(PAGE_SIZE - (at % PAGE_SIZE), length - done);
    out.set(memory.bytes.subarray(buffer.physical(at), buffer.physical(at) + n), done);
    done += n;
  }
  return out;
}

/** The MAC address in the device's registers, "02:7e:57:…". */
export function macOf(registers: RegisterFile): string {
  const low = registers.read32(R.MAC_LOW);
  const high = registers.read32(R.MAC_HIGH);
  const bytes = [low & 0xff, (low >>> 8) & 0xff, (low >>> 16) & 0xff, low >>> 24, high & 0xff, (high >>> 8) & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The device's counters, from its registers. */
export function statsOf(r: RegisterFile): NicStats {
  return {
    txPackets: r.read32(R.TX_PACKETS),
    txBytes: r.read32(R.TX_BYTES),
    txErrors: r.read32(R.TX_ERRORS),
    rxPackets: r.read32(R.RX_PACKETS),
    rxBytes: r.read32(R.RX_BYTES),
    rxDropped: r.read32(R.RX_DROPPED),
    rxErrors: r.read32(R.RX_ERRORS),
  };
}

/** Whether a direction halted on a descriptor-ring fault, and the fault types, from the device's registers. */
export function haltsOf(r: RegisterFile): { tx: boolean; rx: boolean; txFault: number; rxFault: number } {
  const status = r.read32(R.STATUS);
  return {
    tx: (status & R.STATUS_TX_HALTED) !== 0,
    rx: (status & R.STATUS_RX_HALTED) !== 0,
    txFault: r.read32(R.TX_HALT_FAULT),
    rxFault: r.read32(R.RX_HALT_FAULT),
  };
}
