/**
 * The register file, descriptor and status-word layout of the 'nic' model (devices/models/nic.ts).
 *
 * Registers (BAR0, 4 KiB, little-endian):
 *   0x00 CTRL          RW  bit 0 ENABLE, bit 1 LOOPBACK (doorbell)
 *   0x04 STATUS        RO  bit 0 RUNNING, bit 1 TX_HALTED, bit 2 RX_HALTED,
 *                          bit 3 TX_BAD_CONFIGURATION, bit 4 RX_BAD_CONFIGURATION, bit 5 LINK
 *                          (loopback or wired)
 *   0x08 MAC_LOW       RO  MAC address bytes 0..3 (byte 0 in bits 7..0)
 *   0x0C MAC_HIGH      RO  MAC address bytes 4..5; the address is 02:7e:57:00:ss:ss (slot)
 *   0x10 TX_HALT_FAULT RO  fault type that halted TX
 *   0x14 RX_HALT_FAULT RO  fault type that halted RX
 *   0x18 TX_VECTOR     RW  MSI vector for TX completions
 *   0x1C RX_VECTOR     RW  MSI vector for received packets
 *   0x20 TX_RING_BASE  RW  IOVA of the TX ring (64-bit, 16-byte aligned)
 *   0x28 TX_RING_SIZE  RW  entries, a power of two, 2..65536
 *   0x2C TX_HEAD       RO  next descriptor the device reads
 *   0x30 TX_TAIL       RW  one past the last descriptor posted (doorbell)
 *   0x40 RX_RING_BASE  RW  IOVA of the RX ring (64-bit, 16-byte aligned)
 *   0x48 RX_RING_SIZE  RW  entries, a power of two, 2..65536
 *   0x4C RX_HEAD       RO  next receive buffer the device fills
 *   0x50 RX_TAIL       RW  one past the last buffer posted (doorbell)
 *   0x60 TX_PACKETS    RO  packets transmitted      0x64 TX_BYTES  RO  their bytes
 *   0x68 TX_ERRORS     RO  packets that failed
 *   0x6C RX_PACKETS    RO  packets received         0x70 RX_BYTES  RO  their bytes
 *   0x74 RX_DROPPED    RO  packets lost: wire queue full, or larger than the whole RX ring
 *   0x78 RX_ERRORS     RO  packets dropped because a receive buffer was unusable
 * Counters are free-running 32-bit; clearing ENABLE zeroes them.
 *
 * TX descriptor (16 bytes): 0x00 buffer IOVA (u64), 0x08 length (u16), 0x0A flags (u16:
 * bit 0 EOP, bit 1 IRQ), 0x0C status (u32, written back). A packet is the concatenation of
 * the descriptors from the head up to the one with EOP (1..16384 bytes; zero-length
 * fragments are allowed). RX descriptor (16 bytes): 0x00 buffer IOVA (u64), 0x08 buffer
 * length (u16, 0 is invalid), 0x0A reserved, 0x0C status (u32, written back). A packet longer
 * than a buffer spans several descriptors, EOP on the last.
 *
 * Status word (both rings): bit 31 DONE, bit 30 EOP (RX), bit 29 ERROR, bits 27..16 error
 * code (0x100 | fault type: DMA fault; 0x200: bad length), bits 15..0 bytes (RX: bytes
 * written into this buffer; TX: 0). Every descriptor of a failed TX packet carries the
 * packet's status. The device writes the status after the data; the driver clears it when it
 * posts the descriptor.
 *
 * Deliberately not implemented: MAC address filtering (the device is promiscuous), checksum
 * and segmentation offloads, VLANs, multiple queues, link speed or timing, interrupt
 * moderation.
 */
export const NIC = Object.freeze({
  CTRL: 0x00,
  STATUS: 0x04,
  MAC_LOW: 0x08,
  MAC_HIGH: 0x0c,
  TX_HALT_FAULT: 0x10,
  RX_HALT_FAULT: 0x14,
  TX_VECTOR: 0x18,
  RX_VECTOR: 0x1c,
  TX_RING_BASE: 0x20,
  TX_RING_SIZE: 0x28,
  TX_HEAD: 0x2c,
  TX_TAIL: 0x30,
  RX_RING_BASE: 0x40,
  RX_RING_SIZE: 0x48,
  RX_HEAD: 0x4c,
  RX_TAIL: 0x50,
  TX_PACKETS: 0x60,
  TX_BYTES: 0x64,
  TX_ERRORS: 0x68,
  RX_PACKETS: 0x6c,
  RX_BYTES: 0x70,
  RX_DROPPED: 0x74,
  RX_ERRORS: 0x78,
  CTRL_ENABLE: 0x1,
  CTRL_LOOPBACK: 0x2,
  STATUS_RUNNING: 0x1,
  STATUS_TX_HALTED: 0x2,
  STATUS_RX_HALTED: 0x4,
  STATUS_TX_BAD_CONFIGURATION: 0x8,
  STATUS_RX_BAD_CONFIGURATION: 0x10,
  STATUS_LINK: 0x20,
  DESCRIPTOR_BYTES: 16,
  TX_FLAG_EOP: 0x1,
  TX_FLAG_IRQ: 0x2,
  DESC_DONE: 0x8000_0000,
  DESC_EOP: 0x4000_0000,
  DESC_ERROR: 0x2000_0000,
  ERROR_SHIFT: 16,
  ERROR_MASK: 0x0fff_0000,
  BYTES_MASK: 0xffff,
  ERROR_DMA_FAULT: 0x100,
  ERROR_BAD_LENGTH: 0x200,
  MAX_PACKET_BYTES: 16384,
  MAX_RING_ENTRIES: 65536,
} as const);

/** The status word of a failed descriptor. */
export function nicErrorStatus(code: number, eop = false): number {
  return (NIC.DESC_DONE | (eop ? NIC.DESC_EOP : 0) | NIC.DESC_ERROR | ((code << NIC.ERROR_SHIFT) & NIC.ERROR_MASK)) >>> 0;
}

/** The MAC address of the NIC in context slot `slot`. */
export function nicMacOf(slot: number): Uint8Array {
  return Uint8Array.of(0x02, 0x7e, 0x57, 0x00, (slot >>> 8) & 0xff, slot & 0xff);
}
