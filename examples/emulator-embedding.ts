/**
 * Embedding viommu in an emulator's main loop.
 *
 * The emulator owns guest RAM (a SharedArrayBuffer) and hands it to viommu, so devices in
 * worker threads DMA straight into it. Device interrupts come back into the emulator's
 * interrupt controller and are serviced by its main loop, like a CPU taking an IRQ.
 * A second device lives on the emulator's own thread (as v86's devices do) and DMAs through
 * a main-thread port: same IOMMU, same faults, no worker. Finally the machine is saved and
 * resumed on a fresh platform over the same RAM.
 *
 *   node --import tsx examples/emulator-embedding.ts
 */
import {
  CopyEngineDriver,
  createPlatform,
  DMA_OK,
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  MapPhysicalAddressTypeMdl,
  type DMA_IOMMU_INTERFACE_EX,
  type FAULT_INFORMATION,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Out,
  restorePlatform,
} from 'viommu';

/** The emulator's side: its RAM, an interrupt controller, and a loop that services IRQs. */
class ToyEmulator {
  readonly ram = new SharedArrayBuffer(32 * 1024 * 1024);
  readonly #pending: number[] = [];
  readonly #handlers = new Map<number, () => void>();
  ticks = 0;
  irqsServiced = 0;

  /** Called by device models (through viommu) from any thread's completion, on this thread. */
  raise(vector: number): void {
    this.#pending.push(vector);
  }

  onIrq(vector: number, handler: () => void): void {
    this.#handlers.set(vector, handler);
  }

  /** One step of the emulated CPU: run guest code, then take pending interrupts. */
  async step(guestCode: () => void): Promise<void> {
    this.ticks++;
    guestCode();
    // Yield to the host event loop between steps, as a real emulator does between frames:
    // that is when device completions (and their interrupts) arrive.
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
    while (this.#pending.length > 0) {
      const vector = this.#pending.shift()!;
      this.#handlers.get(vector)?.();
      this.irqsServiced++;
    }
  }
}

const emulator = new ToyEmulator();
const platform = await createPlatform({ guestMemory: emulator.ram, workers: 2 });

// A copy engine in the worker pool, driven by its V2 driver; its MSI goes to the emulator.
const engineFn = platform.bus.addFunction({ bus: 0, device: 3, function: 0, model: 'copy-engine' });
const engine = new CopyEngineDriver(platform, engineFn, { vector: 33 }).start();
engineFn.setInterruptHandler((vector) => emulator.raise(vector));
let completions = 0;
emulator.onIrq(33, () => (completions += engine.reap()));

// A main-thread device (think of an emulator's own disk controller), under its own domain.
const diskFn = platform.bus.addFunction({ bus: 0, device: 4, function: 0 });
const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
platform.IoGetIommuInterfaceEx(2, 0, table);
const V2 = table.value!.V2;
const disk: Out<IOMMU_DMA_DEVICE> = {};
const diskDomain: Out<IOMMU_DMA_DOMAIN> = {};
V2.CreateDevice(diskFn, null, disk);
V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 39 } }, null, diskDomain);
V2.AttachDeviceEx(diskDomain.value!, disk.value!);
const diskFaults: FAULT_INFORMATION[] = [];
V2.SetDeviceFaultReportingEx(disk.value!, diskFn.inputMappingId, true, { FaultHandler: (_, info) => diskFaults.push(info) });
const diskBuffer = platform.memory.allocatePages(1);
const diskIova: Out<number> = {};
V2.MapLogicalRangeEx(
  diskDomain.value!,
  IOMMU_ACCESS_WRITE,
  { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(diskBuffer) } },
  null,
  null,
  null,
  diskIova,
);
const diskPort = platform.mainThreadPort(diskFn);
const sector = new TextEncoder().encode('sector 0 of the emulated disk');

// Guest buffers for the copy engine.
const [from, to] = [platform.memory.allocatePages(1), platform.memory.allocatePages(1)];
platform.memory.write(from[0]! * 4096, new TextEncoder().encode('copied by a worker'));
const source = engine.mapBuffer(from, IOMMU_ACCESS_READ);
const destination = engine.mapBuffer(to, IOMMU_ACCESS_WRITE);

// Run the emulator until the copy engine's interrupt has been serviced (or give up).
for (let tick = 0; tick < 5 || (completions === 0 && tick < 5000); tick++) {
  await emulator.step(() => {
    if (tick === 0) void engine.copy(source.iova, destination.iova, 18);
    // The disk device DMAs synchronously inside the emulator's step.
    if (tick === 1) console.log(`disk DMA into its buffer: ${diskPort.write(diskIova.value!, sector) === DMA_OK ? 'ok' : 'fault'}`);
    // ...and once where its driver never mapped anything.
    if (tick === 2) console.log(`disk DMA to a stray address: fault type ${diskPort.write(0x123000, sector)}`);
  });
}
platform.drainFaults();

const decoder = new TextDecoder();
console.log(`emulator ran ${emulator.ticks} ticks, serviced ${emulator.irqsServiced} IRQ(s), ${completions} copy completion(s)`);
console.log(
  `guest memory now holds "${decoder.decode(platform.memory.read(to[0]! * 4096, 18))}" and "${decoder.decode(platform.memory.read(diskBuffer[0]! * 4096, sector.length))}"`,
);
console.log(`the disk's FaultHandler saw ${diskFaults.length} fault(s) at 0x${diskFaults[0]?.Arm64?.FaultAddress.toString(16)}`);

// Save the machine (the emulator keeps its RAM itself), then resume it on a fresh platform:
// the disk's domain and mapping come back, and its driver registers its FaultHandler again.
await platform.devicesIdle();
const saved = platform.saveState({ guestMemory: false });
await engine.stop();
await platform.close();
const resumed = await restorePlatform(saved, { guestMemory: emulator.ram, workers: 1 });
const resumedFn = resumed.platform.bus.find(0, 4, 0)!;
const resumedTable: Out<DMA_IOMMU_INTERFACE_EX> = {};
resumed.platform.IoGetIommuInterfaceEx(2, 0, resumedTable);
for (const { device, pdo, faultReporting } of resumed.rebind) {
  if (pdo !== resumedFn || !faultReporting) continue; // (the copy engine's driver is not resumed here)
  resumedTable.value!.V2.SetDeviceFaultReportingEx(device, pdo.inputMappingId, true, {
    FaultHandler: (_, info) => diskFaults.push(info),
  });
}
const resumedPort = resumed.platform.mainThreadPort(resumedFn);
const sectorOne = new TextEncoder().encode('sector 1, written after resume');
const writeBack = resumedPort.write(diskIova.value!, sectorOne);
resumedPort.write(0x123000, sectorOne); // still unmapped: the re-registered FaultHandler hears of it
resumed.platform.drainFaults();
console.log(
  `saved ${saved.length} bytes of state; after the resume the disk wrote "${decoder.decode(resumed.platform.memory.read(diskBuffer[0]! * 4096, sectorOne.length))}" (${writeBack === DMA_OK ? 'ok' : 'fault'}) at the same IOVA, and ${diskFaults.length - 1} more fault(s) were reported`,
);
await resumed.platform.close();
if (completions !== 1 || diskFaults.length !== 2 || writeBack !== DMA_OK) process.exitCode = 1;
