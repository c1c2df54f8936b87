import t from 'tap';
import {
  FaultInformationArm64,
  FaultInformationX64,
  IOMMU_ACCESS_READ,
  PermissionFault,
  STATUS_SUCCESS,
  TranslationFault,
  UnsupportedUpstreamTransaction,
  type FAULT_INFORMATION,
} from '../../machine/index.js';
import { deviceInTranslateDomain, mdlOf, out, PAGE, platformFor, v2Of } from '../helpers/fixture.js';

const FAULTS = 10_000;

for (const capacity of [4096, 16]) {
  t.test(`a device in a worker faults ${FAULTS} times (fault ring of ${capacity}): every fault is delivered or counted as dropped`, async (t) => {
    const platform = await platformFor(t, { workers: 1, faultRingCapacity: capacity, iommuBaseAddress: 0x0900_0000 });
    const V2 = v2Of(platform);
    const { fn, device, domain } = deviceInTranslateDomain(platform, V2, { bus: 2, device: 7, function: 1 });
    const seen: FAULT_INFORMATION[] = [];
    const context = { name: 'ctx' };
    const contexts: unknown[] = [];
    t.equal(
      V2.SetDeviceFaultReportingEx(device, fn.inputMappingId, true, {
        FaultHandler: (ctx: unknown, info: FAULT_INFORMATION) => {
          contexts.push(ctx);
          seen.push(info);
        },
        FaultContext: context,
      }),
      STATUS_SUCCESS,
    );
    // Unmapped addresses, one page apart and increasing, half of them writes.
    const base = 0x1000_0000;
    const requests = Array.from({ length: FAULTS }, (_, i) =>
      i % 2 === 0 ? { address: base + i * PAGE, length: 8 } : { address: base + i * PAGE, write: [i & 0xff] },
    );
    const results = await platform.dmaBatch(fn, requests);
    t.ok(
      results.every((r, i) => !r.ok && r.faultType === TranslationFault && r.faultAddress === base + i * PAGE),
      'every access faulted',
    );

    const stats = platform.faultStats();
    t.equal(stats.raised, FAULTS, 'raised counts every fault');
    t.equal(stats.pending, 0);
    t.equal(stats.suppressed, 0);
    t.equal(stats.delivered + stats.dropped, FAULTS, 'delivered + dropped adds up');
    t.equal(seen.length, stats.delivered, 'the handler saw exactly the delivered faults');
    if (capacity === 16) t.ok(stats.dropped > 0, 'a tiny ring overflows and counts its drops');

    let ordered = true;
    let fieldsRight = true;
    let previous = -1;
    for (const info of seen) {
      const arm = info.Arm64!;
      const i = (arm.FaultAddress - base) / PAGE;
      if (!(i > previous)) ordered = false;
      previous = i;
      if (
        info.Type !== FaultInformationArm64 ||
        arm.DomainHandle !== domain ||
        arm.PhysicalDeviceObject !== fn ||
        arm.InputMappingId !== fn.inputMappingId ||
        arm.Type !== TranslationFault ||
        arm.Flags.WriteNotRead !== (i % 2 === 1) ||
        arm.Flags.FaultAddressValid !== true ||
        arm.IommuBaseAddress !== 0x0900_0000
      ) {
        fieldsRight = false;
      }
    }
    t.ok(ordered, 'in order per device');
    t.ok(fieldsRight, 'with the right fields');
    t.ok(
      contexts.every((c) => c === context),
      'FaultContext passed through',
    );
  });
}

t.test('faults of a device with reporting off are counted, not delivered; disabling stops delivery', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, device, domain } = deviceInTranslateDomain(platform, V2, { device: 9 });
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ, mdlOf(platform, platform.memory.allocatePages(1)), null, null, null, logical), STATUS_SUCCESS);
  await platform.dma(fn, { address: logical.value!, write: [1, 2] });
  t.same(platform.faultStats(), { raised: 1, delivered: 0, dropped: 0, suppressed: 1, pending: 0, collapsed: 0 });

  const seen: FAULT_INFORMATION[] = [];
  t.equal(
    V2.SetDeviceFaultReportingEx(device, fn.inputMappingId, true, { FaultHandler: (_: unknown, info: FAULT_INFORMATION) => seen.push(info) }),
    STATUS_SUCCESS,
  );
  await platform.dma(fn, { address: logical.value! + 16, write: [1, 2] });
  t.equal(seen.length, 1);
  t.match(seen[0]!.Arm64, { Type: PermissionFault, FaultAddress: logical.value! + 16, Flags: { WriteNotRead: true, FaultAddressValid: true } });

  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
  await platform.dma(fn, { address: 0x5000, length: 1 });
  t.match(seen[1]!.Arm64, { Type: UnsupportedUpstreamTransaction, DomainHandle: null, FaultAddress: 0x5000 }, 'a device with no domain still reports');

  t.equal(V2.AttachDeviceEx(domain, device), STATUS_SUCCESS);
  t.equal(V2.SetDeviceFaultReportingEx(device, fn.inputMappingId, false, null), STATUS_SUCCESS);
  await platform.dma(fn, { address: logical.value!, write: [1] });
  t.equal(seen.length, 2, 'no delivery once disabled');
  t.same(platform.faultStats(), { raised: 4, delivered: 2, dropped: 0, suppressed: 2, pending: 0, collapsed: 0 });
});

t.test('on x64 faults arrive as the X64 variant', async (t) => {
  const platform = await platformFor(t, { workers: 1, arch: 'x64' });
  const V2 = v2Of(platform);
  const { fn, device, domain } = deviceInTranslateDomain(platform, V2, { device: 10 });
  const seen: FAULT_INFORMATION[] = [];
  t.equal(V2.SetDeviceFaultReportingEx(device, 0, true, { FaultHandler: (_: unknown, info: FAULT_INFORMATION) => seen.push(info) }), STATUS_SUCCESS);
  await platform.dma(fn, { address: 0x7000, length: 4 });
  t.equal(seen.length, 1);
  t.equal(seen[0]!.Type, FaultInformationX64);
  t.equal(seen[0]!.Arm64, undefined);
  t.match(seen[0]!.X64, { DomainHandle: domain, FaultAddress: 0x7000, Type: TranslationFault, Flags: { FaultAddressValid: true, AsULONG: 1 }, PciSegment: 0 });
});

t.test('a FaultHandler that throws is reported through onCallbackError and delivery goes on', async (t) => {
  const errors: unknown[] = [];
  const platform = await platformFor(t, { workers: 1, onCallbackError: (error) => errors.push(error) });
  const V2 = v2Of(platform);
  const { fn, device } = deviceInTranslateDomain(platform, V2, { device: 11 });
  let calls = 0;
  const handler = () => {
    calls++;
    throw new Error('driver bug');
  };
  t.equal(V2.SetDeviceFaultReportingEx(device, fn.inputMappingId, true, { FaultHandler: handler }), STATUS_SUCCESS);
  await platform.dmaBatch(fn, [
    { address: 0x9000, length: 1 },
    { address: 0xa000, length: 1 },
  ]);
  t.equal(calls, 2);
  t.equal(errors.length, 2);
  t.match(String(errors[0]), /driver bug/);
  t.same(platform.faultStats(), { raised: 2, delivered: 2, dropped: 0, suppressed: 0, pending: 0, collapsed: 0 });
});
