import * as viommu from 'viommu';

/**
 * Probe: DMA Web Workers that die, in a page. One is terminated from the page in the middle
 * of a task (after a fault), another dies of an uncaught error; bystanders (a copy engine and
 * a DMA function, each in its own domain) must go on working on the remaining workers and the
 * successors, which take the dead workers' slots. test/browser/worker-death.test.ts checks it.
 */

// Every Web Worker the page creates, by name, so the probe can terminate one as a page would.
const started = new Map<string, Worker>();
const NativeWorker = globalThis.Worker;
globalThis.Worker = class RecordedWorker extends NativeWorker {
  constructor(url: string | URL, options?: WorkerOptions) {
    super(url, options);
    if (options?.name !== undefined) started.set(options.name, this);
  }
};

const PAGE = 4096;
const tasks = new URL('./worker-tasks.js', location.href);

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 15_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function workerDeath() {
  const deviceErrors: string[] = [];
  const callbackErrors: string[] = [];
  const platform = await viommu.createPlatform({
    workers: 2,
    memoryBytes: 16 * 1024 * 1024,
    deviceMemoryBytes: 1024 * 1024,
    pageTableBytes: 1024 * 1024,
    onDeviceError: (fn, error) => deviceErrors.push(`${fn.bdf}: ${describeError(error)}`),
    onCallbackError: (error) => callbackErrors.push(describeError(error)),
  });
  try {
    const table: viommu.Out<viommu.DMA_IOMMU_INTERFACE_EX> = {};
    platform.IoGetIommuInterfaceEx(2, 0, table);
    const V2 = table.value!.V2;
    const ok = (status: number, what: string) => {
      if (status !== viommu.STATUS_SUCCESS) throw new Error(`${what}: ${viommu.describeStatus(status)}`);
    };
    const RW = viommu.IOMMU_ACCESS_READ | viommu.IOMMU_ACCESS_WRITE;

    // Bystanders: a copy engine with a buffer, and a function that DMAs from a read-only page.
    const engineFn = platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'copy-engine' });
    const engine = new viommu.CopyEngineDriver(platform, engineFn).start();
    const buffer = engine.mapBuffer(platform.memory.allocatePages(2), RW);
    const readerFn = platform.bus.addFunction({ bus: 0, device: 2, function: 0 });
    const reader: viommu.Out<viommu.IOMMU_DMA_DEVICE> = {};
    const readerDomain: viommu.Out<viommu.IOMMU_DMA_DOMAIN> = {};
    const buddy = { LogicalAllocatorType: viommu.IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 48 } };
    ok(V2.CreateDevice(readerFn, null, reader), 'CreateDevice');
    ok(V2.CreateDomainEx(viommu.DomainTypeTranslate, { AsUlonglong: 0 }, buddy, null, readerDomain), 'CreateDomainEx');
    ok(V2.AttachDeviceEx(readerDomain.value!, reader.value!), 'AttachDeviceEx');
    const [pfn] = platform.memory.allocatePages(1);
    platform.memory.write(pfn! * PAGE, [9, 8, 7]);
    const iova: viommu.Out<number> = {};
    const mdl = { MapType: viommu.MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl([pfn!]) } };
    ok(V2.MapLogicalRangeEx(readerDomain.value!, viommu.IOMMU_ACCESS_READ, mdl, null, null, null, iova), 'MapLogicalRangeEx');
    let round = 0;
    const healthy = async () => {
      const message = [1, 2, 3, (round++ & 0xff) + 4];
      platform.memory.write(buffer.physical(0), message);
      const [copy, read] = await Promise.all([engine.copy(buffer.iova, buffer.iova + PAGE, 4), platform.dma(readerFn, { address: iova.value!, length: 3 })]);
      return (
        copy.status === 0 && read.ok && [...read.data!].join() === '9,8,7' && [...platform.memory.read(buffer.physical(PAGE), 4)].join() === message.join()
      );
    };
    const healthyRounds = async (n: number) => {
      const results: boolean[] = [];
      for (let i = 0; i < n; i++) results.push(await healthy());
      return results;
    };
    await waitFor('both workers', () => platform.workerStats().length === 2);
    const before = platform.workerStats();
    const healthyBefore = await healthyRounds(3);

    // The victim: a device whose driver wants fault reports; its DMA faults, then its worker spins.
    const victimFn = platform.bus.addFunction({ bus: 0, device: 3, function: 0 });
    const victim: viommu.Out<viommu.IOMMU_DMA_DEVICE> = {};
    const victimDomain: viommu.Out<viommu.IOMMU_DMA_DOMAIN> = {};
    ok(V2.CreateDevice(victimFn, null, victim), 'CreateDevice');
    ok(V2.CreateDomainEx(viommu.DomainTypeTranslate, { AsUlonglong: 0 }, buddy, null, victimDomain), 'CreateDomainEx');
    ok(V2.AttachDeviceEx(victimDomain.value!, victim.value!), 'AttachDeviceEx');
    const faults: Array<{ type: number; address: number; bdf: string; sameDomain: boolean }> = [];
    ok(
      V2.SetDeviceFaultReportingEx(victim.value!, victimFn.inputMappingId, true, {
        FaultHandler: (_context: unknown, info: viommu.FAULT_INFORMATION) =>
          faults.push({
            type: info.Arm64!.Type,
            address: info.Arm64!.FaultAddress,
            bdf: (info.Arm64!.PhysicalDeviceObject as viommu.PciFunction).bdf,
            sameDomain: info.Arm64!.DomainHandle === victimDomain.value!,
          }),
      }),
      'SetDeviceFaultReportingEx',
    );
    const flag = platform.memory.allocatePages(1)[0]! * PAGE;
    const spinning = platform.runInWorker(tasks, 'faultThenSpin', { device: victimFn.slot, address: 0x7770_0000, flag, milliseconds: 60_000 }).then(
      (spins) => `finished after ${spins} spins`,
      (error: unknown) => describeError(error),
    );
    const spinner = () => Atomics.load(new Int32Array(platform.memory.buffer), flag / 4);
    await waitFor('the worker to fault and spin', () => spinner() !== 0);
    const busy = platform.workerStats().find((s) => s.threadId === spinner())!;
    const namedWorker = started.get(`viommu DMA worker ${busy.threadId}`);
    if (namedWorker === undefined) throw new Error(`no Web Worker named for thread ${busy.threadId}`);
    namedWorker.terminate();
    const terminatedTask = await spinning;
    await waitFor('a successor', () => platform.workerStats().length === 2 && !platform.workerStats().some((s) => s.threadId === busy.threadId));
    const afterTermination = platform.workerStats();
    const healthyAfterTermination = await healthyRounds(6);

    // An error nobody catches, in whichever worker runs this task.
    const thrower = await platform.runInWorker<number>(tasks, 'throwLater');
    const throwerSlot = platform.workerStats().find((s) => s.threadId === thrower)?.slot ?? -1;
    await waitFor('the uncaught error', () => callbackErrors.length > 0);
    await waitFor('a successor', () => platform.workerStats().length === 2 && !platform.workerStats().some((s) => s.threadId === thrower));
    const afterUncaught = platform.workerStats();
    const healthyAfterUncaught = await healthyRounds(6);

    // A device batch on the successors still runs, through the IOMMU.
    await engine.stop();
    return {
      before,
      healthyBefore,
      terminated: { threadId: busy.threadId, slot: busy.slot },
      terminatedTask,
      afterTermination,
      healthyAfterTermination,
      thrower: { threadId: thrower, slot: throwerSlot },
      afterUncaught,
      healthyAfterUncaught,
      faults,
      faultStats: platform.faultStats(),
      deviceErrors,
      callbackErrors,
      deviceBatches: platform.deviceBatches,
      translation: platform.inspectTranslation(readerDomain.value!, iova.value!),
      readerPhysical: pfn! * PAGE,
    };
  } finally {
    await platform.close();
  }
}

Object.assign(globalThis, { probes: { workerDeath } });
