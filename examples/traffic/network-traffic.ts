import { NIC, NicDriver, type Platform, type PciFunction } from 'viommu';
import { equal } from './copy-traffic.js';
import { type DeviceStats, emptyStats, fillRandom, noteFaults, randomBetween, type TrafficOptions } from './device-stats.js';

/**
 * Verified network traffic on a pair of NICs wired together: lanes alternate direction; each
 * sends a random packet (tagged with a sequence number in its first 8 bytes) and takes the
 * next packet the other side receives, checking it byte for byte against what was sent under
 * its tag. An injected send unmaps its TX buffer just before posting: the device must fail
 * that packet (and only it) with a DMA fault. NIC buffers are mapped once by the driver, so
 * churn does not apply here.
 */
export class NetworkTraffic {
  readonly stats: [DeviceStats, DeviceStats];
  readonly drivers: [NicDriver, NicDriver];
  readonly #options: TrafficOptions;
  readonly #sent = new Map<number, Uint8Array>();
  #sequence = 0;
  #lane = 0;

  constructor(platform: Platform, a: PciFunction, b: PciFunction, options: TrafficOptions) {
    platform.bus.connect(a, b);
    this.#options = options;
    this.drivers = [new NicDriver(platform, a), new NicDriver(platform, b)];
    this.stats = [emptyStats('nic', a.bdf), emptyStats('nic', b.bdf)];
  }

  async start(): Promise<this> {
    await Promise.all(this.drivers.map((driver) => driver.start()));
    return this;
  }

  async one(): Promise<void> {
    const { random, minBytes, maxBytes, faultRate } = this.#options;
    const direction = this.#lane++ % 2;
    const sender = this.drivers[direction]!;
    const receiver = this.drivers[1 - direction]!;
    const stats = this.stats[direction]!;
    const length = Math.max(8, Math.min(NIC.MAX_PACKET_BYTES, randomBetween(random, minBytes, maxBytes)));
    const packet = new Uint8Array(length);
    fillRandom(random, packet);
    const sequence = ++this.#sequence;
    new DataView(packet.buffer).setFloat64(0, sequence, true);
    const fragments = 1 + Math.floor(random() * 3);
    // Fault injection needs the next TX entry to be this packet's: only with nothing waiting.
    const inject = random() < faultRate && sender.txPending.backlog === 0 && sender.txPending.inFlight === 0;
    try {
      if (inject) {
        sender.revokeTxBuffer(0);
        const status = await sender.send(packet, { fragments: 1 });
        stats.faultsInjected++;
        if ((status & NIC.DESC_ERROR) !== 0) stats.injectedFailures++;
        return;
      }
      this.#sent.set(sequence, packet);
      const status = await sender.send(packet, { fragments });
      if ((status & NIC.DESC_ERROR) !== 0) {
        this.#sent.delete(sequence);
        stats.unexpectedFailures++;
        return;
      }
      const received = await receiver.receive();
      const tag = received.length >= 8 ? new DataView(received.buffer, received.byteOffset).getFloat64(0, true) : -1;
      const expected = this.#sent.get(tag);
      this.#sent.delete(tag);
      if (expected === undefined || !equal(received, expected)) stats.mismatches++;
      else {
        stats.transfers++;
        stats.bytes += received.length;
      }
    } finally {
      noteFaults(stats, sender.faults);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.drivers.map((driver) => driver.stop()));
  }
}
