import t from 'tap';
import {
  CopyEngineDriver,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  STATUS_SUCCESS,
  TranslationFault,
  type FAULT_INFORMATION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type PciFunction,
} from '../../machine/index.js';
import { deviceInTranslateDomain, mdlOf, out, PAGE, platformFor, v2Of } from '../helpers/fixture.js';

const models = [new URL('../fixtures/throwing-model.ts', import.meta.url), new URL('../fixtures/exiting-model.ts', import.meta.url)];

t.test('a device model that throws fails only its own batch; one whose worker dies is replaced; the rest is untouched', async (t) => {
  const errors: Array<{ fn: PciFunction; error: unknown }> = [];
  const platform = await platformFor(t, { workers: 2, deviceModels: models, onDeviceError: (fn, error) => errors.push({ fn, error }) });
  const V2 = v2Of(platform);

  // A healthy copy engine with a mapping, and a healthy DMA function: the bystanders.
  const engineFn = platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'copy-engine' });
  const engine = new CopyEngineDriver(platform, engineFn).start();
  const buffer = engine.mapBuffer(platform.memory.allocatePages(2), IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE);
  platform.memory.write(buffer.physical(0), [1, 2, 3, 4]);
  const bystander = deviceInTranslateDomain(platform, V2, { device: 2 });
  const iova = out<number>();
  const [pfn] = platform.memory.allocatePages(1);
  platform.memory.write(pfn! * PAGE, [9, 9, 9]);
  t.equal(V2.MapLogicalRangeEx(bystander.domain, IOMMU_ACCESS_READ, mdlOf(platform, [pfn!]), null, null, null, iova), STATUS_SUCCESS);
  const healthy = async () => {
    const copy = await engine.copy(buffer.iova, buffer.iova + PAGE, 4);
    const read = await platform.dma(bystander.fn, { address: iova.value!, length: 3 });
    return copy.status === 0 && read.ok && read.data![0] === 9 && platform.memory.read(buffer.physical(PAGE), 4).join() === '1,2,3,4';
  };
  t.ok(await healthy(), 'bystanders work before');

  // The throwing model: its batch fails and is reported; its next doorbell runs normally.
  const throwing = platform.bus.addFunction({ bus: 0, device: 3, function: 0, model: 'throwing', behindIommu: false });
  const registers = throwing.registers!;
  registers.write32(0x4, 1);
  registers.write32(0x0, 1);
  await platform.devicesIdle();
  t.equal(errors.length, 1);
  t.equal(errors[0]!.fn, throwing);
  t.match(String(errors[0]!.error), /model bug/);
  t.ok(await healthy(), 'bystanders work after a model threw');
  registers.write32(0x8, pfn! * PAGE);
  registers.write32(0x4, 0);
  let vector = -1;
  throwing.setInterruptHandler((v) => (vector = v));
  registers.write32(0x0, 1);
  await platform.devicesIdle();
  t.equal(vector, 1, 'the device runs again: its lock was released');
  t.equal(registers.read32(0xc), 0x00090909, 'and it reads through the bus');

  // The exiting model: it faults, then its worker dies in the middle of the batch.
  const exitingDevice = deviceInTranslateDomain(platform, V2, { device: 4 }, null);
  void exitingDevice;
  const exitingFn = platform.bus.addFunction({ bus: 0, device: 5, function: 0, model: 'exiting' });
  const device = out<IOMMU_DMA_DEVICE>();
  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDevice(exitingFn, null, device), STATUS_SUCCESS);
  t.equal(V2.CreateDomainEx(0, { AsUlonglong: 0 }, null, null, domain), STATUS_SUCCESS);
  t.equal(V2.AttachDeviceEx(domain.value!, device.value!), STATUS_SUCCESS);
  const faults: FAULT_INFORMATION[] = [];
  t.equal(V2.SetDeviceFaultReportingEx(device.value!, exitingFn.inputMappingId, true, { FaultHandler: (_, info) => faults.push(info) }), STATUS_SUCCESS);
  const translationBefore = platform.inspectTranslation(bystander.domain, iova.value!);
  exitingFn.registers!.write32(0x0, 1);
  await platform.devicesIdle();
  t.equal(errors.length, 2, 'the dead worker is reported');
  t.equal(errors[1]!.fn, exitingFn);
  t.match(String(errors[1]!.error), /exited with code: 3/);
  t.equal(faults.length, 1, 'the fault it raised before dying was delivered');
  t.match(faults[0]!.Arm64, { Type: TranslationFault, FaultAddress: 0x7770_0000 });
  t.same(platform.inspectTranslation(bystander.domain, iova.value!), translationBefore, 'IOMMU state untouched');
  t.ok(await healthy(), 'bystanders work after a worker died');
  for (let i = 0; i < 6; i++) t.ok(await healthy(), `and keep working on the replacement worker (${i})`);
  t.same(platform.deviceBatches.failed, 2);
  await engine.stop();
});
