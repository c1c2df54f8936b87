/**
 * viommu/v86: a viommu platform inside the v86 emulator (npm `v86`, which this package does
 * not depend on: it only knows v86's shape, machine/v86/emulator.ts).
 *
 *   const emulator = new V86({ ..., autostart: false });
 *   emulator.add_listener('emulator-loaded', async () => {
 *     const { platform, binding } = await createV86Platform(emulator);
 *     const fn = platform.bus.addFunction({ bus: 0, device: 7, function: 0, model: 'nvme', busMasterEnable: false });
 *     binding.attach(fn);                       // on v86's PCI bus, MMIO at 0xfe000000, INTx
 *     new DeviceAssignment(platform, fn, { onFault: (fault) => ... }); // the IOMMU, as a hypervisor sets it up
 *     emulator.run();
 *   });
 *
 * See docs/embedding.md and examples/v86-linux-nvme.ts.
 */
import { Errors } from '../../base/errors.js';
import { createPlatform, type Platform } from '../platform.js';
import type { PlatformOptions } from '../platform-options.js';
import { cpuOf, guestMemoryOf, V86Binding } from './binding.js';

export { type AssignmentOptions, DeviceAssignment, type GuestRange } from './assignment.js';
export { guestMemoryOf, type V86AttachOptions, V86Binding, type V86BindingStats } from './binding.js';
export type { V86Cpu, V86Emulator, V86Io, V86Pci, V86PciDevice } from './emulator.js';

/** What createV86Platform decides itself: the binding's guest RAM and data plane. */
const DECIDED = ['guestMemory', 'memoryBytes', 'dataPlane', 'workers', 'workerUrl', 'onDeviceWrite'] as const;

/** createPlatform's options, but for what the binding decides. */
export type V86PlatformOptions = Omit<PlatformOptions, (typeof DECIDED)[number]>;

/**
 * A platform over a v86 emulator's RAM, with its data plane on v86's thread (dataPlane
 * 'main-thread': no worker, no SharedArrayBuffer), device writes to guest RAM reported to
 * v86's JIT (cpu.jit_dirty_cache), and the binding that puts its functions on v86's bus.
 * Call it once the emulator's memory exists ('emulator-loaded') and before the guest boots.
 */
export async function createV86Platform(emulator: object, options: V86PlatformOptions = {}): Promise<{ platform: Platform; binding: V86Binding }> {
  if (typeof options !== 'object' || options === null) throw Errors.InvalidArgument('options', 'an object', options);
  for (const key of DECIDED) {
    if (key in options)
      throw Errors.InvalidOption(key, "absent: createV86Platform takes v86's RAM and runs devices on v86's thread", (options as Record<string, unknown>)[key]);
  }
  const cpu = cpuOf(emulator);
  const guestMemory = guestMemoryOf(emulator);
  const platform = await createPlatform({
    ...options,
    guestMemory,
    dataPlane: 'main-thread',
    onDeviceWrite: (start, end) => cpu.jit_dirty_cache(start, end),
  });
  try {
    return { platform, binding: new V86Binding(emulator, platform) };
  } catch (error) {
    await platform.close();
    throw error;
  }
}
