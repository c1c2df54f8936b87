import t from 'tap';
import { CopyEngineDriver } from '../../devices/drivers/copy-engine-driver.js';
import { NicDriver } from '../../devices/drivers/nic-driver.js';
import { NvmeDriver } from '../../devices/drivers/nvme-driver.js';
import { platformFor } from '../helpers/fixture.js';

/** The drivers refuse bad arguments with the platform's error factories: the class, and a message naming the argument or option. */
t.test('driver constructors and calls name the argument or option at fault', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const copy = platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'copy-engine' });
  const nvme = platform.bus.addFunction({ bus: 0, device: 2, function: 0, model: 'nvme' });
  const nic = platform.bus.addFunction({ bus: 0, device: 3, function: 0, model: 'nic' });
  t.throws(() => new CopyEngineDriver(platform, nvme), { name: 'TypeError', message: "fn (00:02.0) runs 'nvme', not 'copy-engine'" });
  t.throws(() => new NvmeDriver(platform, nic), { name: 'TypeError', message: "fn (00:03.0) runs 'nic', not 'nvme'" });
  t.throws(() => new NicDriver(platform, copy), { name: 'TypeError', message: "fn (00:01.0) runs 'copy-engine', not 'nic'" });
  const options: Array<[() => unknown, string]> = [
    [() => new CopyEngineDriver(platform, copy, { ringEntries: 3 }), 'options.ringEntries must be a power of two in 2..65536 (got 3)'],
    [() => new NvmeDriver(platform, nvme, { vector: 0 }), 'options.vector must be an integer in 1..31 (got 0)'],
    [() => new NvmeDriver(platform, nvme, { queueDepth: 1 }), 'options.queueDepth must be an integer in 2..4096 (got 1)'],
    [() => new NicDriver(platform, nic, { txEntries: 100 }), 'options.txEntries must be a power of two in 2..65536 (got 100)'],
    [() => new NicDriver(platform, nic, { rxBufferBytes: 0 }), 'options.rxBufferBytes must be an integer in 1..65535 (got 0)'],
    [() => new NicDriver(platform, nic, { rxEntries: 8, rxBuffers: 8 }), 'options.rxBuffers must be an integer in 1..7 (got 8)'],
  ];
  for (const [construct, message] of options) t.throws(construct, { name: 'RangeError', message }, message);
  const driver = new NicDriver(platform, nic);
  await t.rejects(driver.send(new Uint8Array(4)), { name: 'Error', message: 'the NIC driver is not started' });
  await t.rejects(driver.receive(), { name: 'Error', message: 'the NIC driver is not started' });
  t.throws(() => driver.revokeRxBuffer(0), { name: 'RangeError', message: 'ahead must be the distance to a posted receive buffer (none is posted) (got 0)' });
});
