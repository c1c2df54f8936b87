/**
 * A minimal driver for a minimal device, step by step, using nothing but the
 * DMA_IOMMU_INTERFACE_V2 table and the platform surface.
 *
 * The device is the built-in copy engine (devices/models/copy-engine.ts): the driver gives it
 * one descriptor in a ring, rings the doorbell, and waits for the interrupt. The copy engine's
 * real driver (CopyEngineDriver) does the same with more care; this is the bare sequence.
 *
 *   node --import tsx examples/minimal-driver.ts
 */
import {
  COPY_ENGINE as R,
  createPlatform,
  describeStatus,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypeMdl,
  STATUS_SUCCESS,
  type DMA_IOMMU_INTERFACE_EX,
  type FAULT_INFORMATION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type NTSTATUS,
  type Out,
} from 'viommu';

const check = (status: NTSTATUS, what: string) => {
  if (status !== STATUS_SUCCESS) throw new Error(`${what}: ${describeStatus(status)}`);
};

// 1. A machine: guest memory, a PCI bus, the IOMMU, two DMA worker threads.
const platform = await createPlatform({ workers: 2, memoryBytes: 16 * 1024 * 1024 });
const pdo = platform.bus.addFunction({ bus: 0, device: 2, function: 0, model: 'copy-engine' });

// 2. The interface, as a Windows driver gets it.
const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
check(platform.IoGetIommuInterfaceEx(2, 0, table), 'IoGetIommuInterfaceEx');
const V2 = table.value!.V2;

// 3. A DMA device for our PDO, a Translate domain with a buddy allocator, attached. Each
//    handle arrives in an `_Out_` holder and is read once the routine succeeded.
const deviceOut: Out<IOMMU_DMA_DEVICE> = {};
check(V2.CreateDevice(pdo, null, deviceOut), 'CreateDevice');
const device = deviceOut.value!;
const domainOut: Out<IOMMU_DMA_DOMAIN> = {};
const allocator = { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 48 } };
check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, allocator, null, domainOut), 'CreateDomainEx');
const domain = domainOut.value!;
check(V2.AttachDeviceEx(domain, device), 'AttachDeviceEx');
const faults: FAULT_INFORMATION[] = [];
check(V2.SetDeviceFaultReportingEx(device, pdo.inputMappingId, true, { FaultHandler: (_, info) => faults.push(info) }), 'SetDeviceFaultReportingEx');

// 4. Guest memory: a page for the rings, a source page with a message, a destination page.
const [ringPage, sourcePage, destinationPage] = platform.memory.allocatePages(3) as [number, number, number];
platform.memory.fill(ringPage * 4096, 4096, 0);
platform.memory.write(sourcePage * 4096, new TextEncoder().encode('hello through the IOMMU'));

// 5. Map each page for the device; the device only ever sees the logical addresses.
const map = (pfn: number, access: number) => {
  const iova: Out<number> = {};
  check(
    V2.MapLogicalRangeEx(domain, access, { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl([pfn]) } }, null, null, null, iova),
    'MapLogicalRangeEx',
  );
  return iova.value!;
};
const ring = map(ringPage, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE);
const source = map(sourcePage, IOMMU_ACCESS_READ);
const destination = map(destinationPage, IOMMU_ACCESS_WRITE);

// 6. Program the device: 2 descriptors (32 bytes each) at the start of the ring page,
//    completions right after them.
const registers = pdo.registers!;
registers.write64(R.RING_BASE, ring);
registers.write32(R.RING_SIZE, 2);
registers.write64(R.COMPLETIONS, ring + 2 * R.DESCRIPTOR_BYTES);
registers.write32(R.MSI_VECTOR, 7);
registers.write32(R.CONTROL, R.CONTROL_ENABLE | R.CONTROL_INTERRUPTS);

// 7. One descriptor {source, destination, length, flags, cookie}, then the doorbell.
const at = ringPage * 4096;
platform.memory.writeU64(at, source);
platform.memory.writeU64(at + 8, destination);
platform.memory.writeU32(at + 16, 23);
platform.memory.writeU32(at + 20, R.FLAG_INTERRUPT);
platform.memory.writeU64(at + 24, 0xc0ffee);
const interrupt = new Promise<number>((resolve) => pdo.setInterruptHandler((vector) => resolve(vector)));
registers.write32(R.TAIL, 1);

// 8. The device ran in a worker, translated both addresses, copied, and raised vector 7.
console.log(`interrupt vector ${await interrupt}`);
const status = platform.memory.readU32(at + 2 * R.DESCRIPTOR_BYTES + 8) & 0xffff;
console.log(`completion status ${status}, destination reads: "${new TextDecoder().decode(platform.memory.read(destinationPage * 4096, 23))}"`);

// 9. Tear down in the order Windows requires: unmap, detach, delete domain, delete device
//    (deleting the device also ends its fault reporting).
registers.write32(R.CONTROL, 0);
await platform.devicesIdle();
for (const iova of [ring, source, destination]) check(V2.UnmapLogicalRange(domain, iova, 1), 'UnmapLogicalRange');
check(V2.DetachDeviceEx(device), 'DetachDeviceEx');
check(V2.DeleteDomain(domain), 'DeleteDomain');
check(V2.DeleteDevice(device), 'DeleteDevice');
console.log(`faults: ${faults.length}`);
await platform.close();
