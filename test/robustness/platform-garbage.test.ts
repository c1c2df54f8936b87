import t, { type Test } from 'tap';
import { CopyEngineDriver, createPlatform, restorePlatform, type Platform, type PlatformOptions } from '../../machine/index.js';
import { deviceInTranslateDomain, platformFor, v2Of } from '../helpers/fixture.js';
import { isInstanceOf } from '../../base/values.js';
import { type Garbage, garbage } from './garbage.js';

/**
 * The platform surface refuses bad input with a TypeError or RangeError whose message names
 * the argument (or option) at fault, and a refused call changes nothing. Messages are
 * matched by the argument's name, not their wording.
 */

/** Runs `call` and checks it throws (or rejects with) a TypeError/RangeError naming `name`. */
async function refuses(t: Test, call: () => unknown, name: string | RegExp, label: string): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (thrown) {
    error = thrown;
  }
  const named = typeof name === 'string' ? (error as Error | undefined)?.message?.includes(name) : name.test((error as Error | undefined)?.message ?? '');
  if (!(error instanceof TypeError || error instanceof RangeError) || !named)
    t.fail(`${label}: expected a TypeError/RangeError naming ${String(name)}, got ${error === undefined ? 'no error' : String(error)}`);
  else t.pass(label);
}

const BYTE_GARBAGE: Garbage[] = [256, -1, 1.5, Number.NaN, '7', null, 300n, true].map((value) => ({ name: String(value), value }));

/** Each option with what it accepts (garbage passing this is skipped). */
const OPTION_ACCEPTS: Record<keyof PlatformOptions, (value: unknown) => boolean> = {
  memoryBytes: () => false,
  guestMemory: (v) => isInstanceOf(v, SharedArrayBuffer),
  arch: () => false,
  kernelDmaProtection: (v) => typeof v === 'boolean',
  dmaGuardPolicy: () => false,
  userUnlocked: (v) => typeof v === 'boolean',
  workers: () => false,
  workerUrl: () => false,
  faultReportingEx: () => false,
  maxDomains: () => false,
  maxFunctions: () => false,
  deviceMemoryBytes: () => false,
  pageTableBytes: () => false,
  iotlbEntries: () => false,
  iotlbWays: () => false,
  faultRingCapacity: () => false,
  invalidationLogCapacity: () => false,
  inputMappingBase: () => false,
  iommuBaseAddress: () => false,
  deviceModels: (v) => Array.isArray(v) && v.length === 0,
  onCallbackError: (v) => typeof v === 'function',
  onDeviceError: (v) => typeof v === 'function',
  dataPlane: () => false,
  // With the default data plane (workers) even a function is refused: devices write from worker threads.
  onDeviceWrite: () => false,
};

t.test('createPlatform refuses garbage in every option, naming it', async (t) => {
  for (const [option, accepts] of Object.entries(OPTION_ACCEPTS)) {
    for (const g of garbage()) {
      if (g.value === undefined || accepts(g.value)) continue;
      await refuses(t, () => createPlatform({ workers: 0, [option]: g.value } as PlatformOptions), `options.${option}`, `${option} = ${g.name}`);
    }
  }
  await refuses(t, () => createPlatform({ memroyBytes: 1 << 20 } as PlatformOptions), 'options.memroyBytes', 'a misspelt option');
  for (const g of [5, 'x', true]) await refuses(t, () => createPlatform(g as PlatformOptions), 'options', `options = ${String(g)}`);
});

t.test('dma and dmaBatch refuse malformed requests before any access, and bytes to write must be bytes', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const before = JSON.stringify(platform.faultStats());
  for (const g of garbage()) {
    if (typeof g.value !== 'object' || g.value === null) await refuses(t, () => platform.dma(fn, g.value as never), 'request', `request = ${g.name}`);
    await refuses(t, () => platform.dma(fn, { address: g.value as number, length: 4 }), 'request.address', `address = ${g.name}`);
    await refuses(t, () => platform.dma(fn, { address: 0, length: g.value as number }), 'request.length', `length = ${g.name}`);
    if (!Array.isArray(g.value) && g.value !== undefined)
      await refuses(t, () => platform.dma(fn, { address: 0, write: g.value as number[] }), /request(\.write)? must/, `write = ${g.name}`);
    await refuses(t, () => platform.dma(g.value as never, { address: 0, length: 4 }), 'pdo', `pdo = ${g.name}`);
    if (!Array.isArray(g.value)) await refuses(t, () => platform.dmaBatch(fn, g.value as never), 'requests', `requests = ${g.name}`);
  }
  for (const g of BYTE_GARBAGE) {
    await refuses(t, () => platform.dma(fn, { address: 0, write: [1, 2, g.value as number] }), 'request.write[2]', `a byte ${g.name}`);
    await refuses(
      t,
      () =>
        platform.dmaBatch(fn, [
          { address: 0, length: 1 },
          { address: 0, write: [g.value as number] },
        ]),
      'requests[1].write[0]',
      `a batch byte ${g.name}`,
    );
  }
  t.equal(JSON.stringify(platform.faultStats()), before, 'no DMA ran: no fault was raised');
});

t.test('guest memory helpers refuse garbage by argument name and leave memory and the page allocator as they were', async (t) => {
  const platform = await platformFor(t);
  const memory = platform.memory;
  const [page] = memory.allocatePages(1);
  const at = page! * 4096;
  memory.write(at, [1, 2, 3, 4]);
  const free = memory.freePageCount;
  for (const g of garbage()) {
    const v = g.value as number;
    if (g.value !== undefined) await refuses(t, () => memory.allocatePages(v), 'count', `allocatePages(${g.name})`);
    if (g.value !== undefined) await refuses(t, () => memory.allocateContiguousPages(v), 'count', `allocateContiguousPages(${g.name})`);
    if (!Array.isArray(g.value)) await refuses(t, () => memory.freePages(g.value as number[]), /pfns|page frame/, `freePages(${g.name})`);
    await refuses(t, () => memory.read(v, 4), 'physicalAddress', `read at ${g.name}`);
    await refuses(t, () => memory.read(at, v), 'length', `read of ${g.name} bytes`);
    if (g.value !== undefined) await refuses(t, () => memory.fill(at, 4, v), 'value', `fill with ${g.name}`);
    // writeU32 takes signed int32 values as their bits (-1 is 0xFFFFFFFF).
    if (g.value !== undefined && g.value !== -1) await refuses(t, () => memory.writeU32(at, v), 'value', `writeU32 of ${g.name}`);
    await refuses(t, () => memory.writeU64(at, v), 'value', `writeU64 of ${g.name}`);
    if (!Array.isArray(g.value)) await refuses(t, () => memory.mdl(g.value as number[]), 'pfns', `mdl(${g.name})`);
  }
  for (const g of BYTE_GARBAGE) await refuses(t, () => memory.write(at, [9, g.value as number]), 'bytes[1]', `write of byte ${g.name}`);
  t.same([...memory.read(at, 4)], [1, 2, 3, 4], 'memory unchanged');
  t.equal(memory.freePageCount, free, 'no page allocated or freed');
});

t.test('the PCI bus, functions, policy, snapshots, inspection and runInWorker refuse garbage by name', async (t) => {
  const platform: Platform = await platformFor(t, { workers: 1 });
  const fn = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  const { domain } = deviceInTranslateDomain(platform, v2Of(platform), { device: 4 });
  const functions = platform.bus.functions().length;
  const policy = JSON.stringify(platform.policy);
  for (const g of garbage()) {
    const v = g.value as never;
    for (const field of ['bus', 'device', 'function'] as const)
      await refuses(t, () => platform.bus.addFunction({ bus: 0, device: 2, function: 0, [field]: v }), `options.${field}`, `addFunction ${field} = ${g.name}`);
    for (const field of ['externalFacing', 'behindIommu', 'busMasterEnable'] as const)
      if (typeof g.value !== 'boolean' && g.value !== undefined)
        await refuses(
          t,
          () => platform.bus.addFunction({ bus: 0, device: 2, function: 0, [field]: v }),
          `options.${field}`,
          `addFunction ${field} = ${g.name}`,
        );
    if (g.value !== undefined) await refuses(t, () => platform.bus.addFunction({ bus: 0, device: 2, function: 0, model: v }), /model/, `model = ${g.name}`);
    if (typeof g.value !== 'object' || g.value === null) await refuses(t, () => platform.bus.addFunction(v), 'options', `addFunction(${g.name})`);
    await refuses(t, () => platform.bus.connect(fn, v), 'functions', `connect(fn, ${g.name})`);
    if (typeof g.value !== 'boolean') await refuses(t, () => fn.setBusMaster(v), 'enabled', `setBusMaster(${g.name})`);
    if (typeof g.value !== 'function' && g.value !== null) await refuses(t, () => fn.setInterruptHandler(v), 'handler', `setInterruptHandler(${g.name})`);
    if (typeof g.value !== 'object' || g.value === null) await refuses(t, () => platform.setPolicy(v), 'policy', `setPolicy(${g.name})`);
    for (const key of ['dmaGuardPolicy', 'userUnlocked', 'kernelDmaProtection'])
      if (typeof g.value !== 'boolean' && g.value !== 0 && g.value !== 1 && g.value !== 2)
        await refuses(t, () => platform.setPolicy({ [key]: v }), `policy.${key}`, `setPolicy ${key} = ${g.name}`);
    if (g.value !== undefined && (typeof g.value !== 'object' || g.value === null))
      await refuses(t, () => platform.saveState(v), 'options', `saveState(${g.name})`);
    if (typeof g.value !== 'boolean' && g.value !== undefined)
      await refuses(t, () => platform.saveState({ guestMemory: v }), 'options.guestMemory', `guestMemory = ${g.name}`);
    await refuses(t, () => platform.inspectTranslation(domain, v), 'logicalAddress', `inspectTranslation address ${g.name}`);
    if (typeof g.value !== 'string' && !isInstanceOf(g.value, URL))
      await refuses(t, () => platform.runInWorker(v, 'x'), 'moduleUrl', `runInWorker url ${g.name}`);
    if (typeof g.value !== 'string') await refuses(t, () => platform.runInWorker('data:text/javascript,', v), 'exportName', `runInWorker export ${g.name}`);
    await refuses(t, () => platform.mainThreadPort(v), 'pdo', `mainThreadPort(${g.name})`);
  }
  for (const g of [
    { name: 'function', value: () => 0 },
    { name: 'symbol', value: Symbol('x') },
  ])
    await refuses(t, () => platform.runInWorker('data:text/javascript,export const x = 1', 'x', g.value), 'args', `runInWorker args ${g.name}`);
  t.equal(platform.bus.functions().length, functions, 'no function was added');
  t.equal(JSON.stringify(platform.policy), policy, 'the policy is unchanged');
  // Snapshots and restore options.
  const bytes = platform.saveState();
  for (const g of garbage()) {
    if (!isInstanceOf(g.value, Uint8Array)) await refuses(t, () => restorePlatform(g.value as Uint8Array), /snapshot/, `restorePlatform(${g.name})`);
    if (g.value !== undefined && (typeof g.value !== 'object' || g.value === null))
      await refuses(t, () => restorePlatform(bytes, g.value as never), 'options', `restore options ${g.name}`);
    if (g.value !== undefined) await refuses(t, () => restorePlatform(bytes, { workers: g.value as number }), 'options.workers', `restore workers = ${g.name}`);
  }
  await refuses(t, () => restorePlatform(bytes, { memoryBytes: 1 << 20 } as never), 'options.memoryBytes', 'a restore option the snapshot decides');
});

t.test("the drivers' public methods refuse garbage by argument name", async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const driver = new CopyEngineDriver(platform, platform.bus.addFunction({ bus: 0, device: 3, function: 0, model: 'copy-engine' })).start();
  const [page] = platform.memory.allocatePages(1);
  const buffer = driver.mapBuffer([page!]);
  const mapped = driver.mappedBuffers;
  for (const g of garbage()) {
    const v = g.value as number;
    if (g.value !== undefined) {
      await refuses(t, () => driver.copy(v, buffer.iova, 16), 'sourceIova', `copy source ${g.name}`);
      await refuses(t, () => driver.copy(buffer.iova, v, 16), 'destinationIova', `copy destination ${g.name}`);
      await refuses(t, () => driver.copy(buffer.iova, buffer.iova, v), 'length', `copy length ${g.name}`);
      await refuses(t, () => driver.fill(buffer.iova, 16, v), 'byte', `fill byte ${g.name}`);
      await refuses(t, () => driver.mapBuffer([page!], v), 'access', `mapBuffer access ${g.name}`);
    }
    if (!Array.isArray(g.value)) await refuses(t, () => driver.mapBuffer(g.value as number[]), 'pfns', `mapBuffer(${g.name})`);
    await refuses(t, () => driver.unmapBuffer(g.value as never), 'buffer', `unmapBuffer(${g.name})`);
  }
  await refuses(t, () => driver.fill(buffer.iova, 16, 256), 'byte', 'fill byte 256 (once coerced to 0)');
  t.equal(driver.mappedBuffers, mapped, 'no buffer mapped or unmapped');
  await driver.stop();
});
