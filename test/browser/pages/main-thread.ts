import * as viommu from 'viommu';
import { DeviceAssignment } from 'viommu/v86';

/**
 * The data plane on the page's own thread (dataPlane 'main-thread'), in a page without
 * cross-origin isolation, where SharedArrayBuffer does not exist: what an emulator such as v86
 * running in an ordinary page gets. NVMe traffic through the IOMMU, a fault, and viommu/v86's
 * hypervisor-style assignment.
 */
async function mainThread() {
  const platform = await viommu.createPlatform({ dataPlane: 'main-thread', memoryBytes: 16 * 1024 * 1024 });
  const fn = platform.bus.addFunction({ bus: 0, device: 5, function: 0, model: 'nvme', modelOptions: { namespaceBytes: 1024 * 1024 } });
  const driver = await new viommu.NvmeDriver(platform, fn).start();
  const pfns = platform.memory.allocatePages(1);
  const at = pfns[0]! * 4096;
  const buffer = driver.mapBuffer(pfns);
  platform.memory.write(
    at,
    Array.from({ length: 4096 }, (_, i) => (i * 13 + 7) & 0xff),
  );
  const written = await driver.write(3, 8, buffer);
  platform.memory.fill(at, 4096, 0);
  const read = await driver.read(3, 8, buffer);
  const back = Array.from(platform.memory.read(at, 6));
  driver.unmapBuffer(buffer);
  const refused = await driver.read(3, 8, buffer);
  const faults = driver.faults.map((fault) => ({ address: fault.Arm64?.FaultAddress === buffer.iova, namesThePdo: fault.Arm64?.PhysicalDeviceObject === fn }));
  await driver.stop();
  // The hypervisor's part from viommu/v86: guest RAM mapped at IOVA = GPA.
  const assigned = platform.bus.addFunction({ bus: 0, device: 7, function: 0 });
  const assignment = new DeviceAssignment(platform, assigned, { ranges: [[0, 1024 * 1024]] });
  platform.memory.write(0x3000, [1, 2, 3, 4]);
  const identity = await platform.dma(assigned, { address: 0x3000, length: 4 });
  const outside = await platform.dma(assigned, { address: 0x20_0000, length: 4 });
  await platform.close();
  return {
    crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer,
    plainRam: platform.memory.buffer instanceof ArrayBuffer,
    statuses: [written.status, read.status, refused.status],
    back,
    faults,
    identity: identity.ok ? Array.from(identity.data ?? []) : null,
    outside: outside.ok ? 'ok' : outside.faultType,
    assignmentFaults: assignment.faultCount,
    faultStats: platform.faultStats(),
  };
}

Object.assign(globalThis, { probes: { mainThread } });
