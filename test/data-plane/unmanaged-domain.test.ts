import t, { type Test } from 'tap';
import {
  AccessFlagFault,
  DomainConfigurationArm64,
  DomainTypeUnmanaged,
  PermissionFault,
  STATUS_SUCCESS,
  TranslationFault,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type Platform,
} from '../../machine/index.js';
import { GuestPageTables } from '../helpers/arm64-tables.js';
import { ok, out, PAGE, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/** An unmanaged domain with one attached device, on a one-worker platform (so walk counts are exact). */
async function unmanagedSetup(t: Test, inputSize = 48) {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 8, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  const domain = out<IOMMU_DMA_DOMAIN>();
  ok(V2.CreateDevice(fn, null, device), 'CreateDevice');
  ok(V2.CreateDomainEx(DomainTypeUnmanaged, ZERO_FLAGS, null, null, domain), 'CreateDomainEx');
  ok(V2.AttachDeviceEx(domain.value!, device.value!), 'AttachDeviceEx');
  const tables = new GuestPageTables(platform, inputSize);
  return { platform, V2, fn, domain: domain.value!, tables };
}

function stamp(platform: Platform, value: number): number {
  const pfn = platform.memory.allocatePages(1)[0]!;
  platform.memory.fill(pfn * PAGE, PAGE, value);
  return pfn * PAGE;
}

const walks = (platform: Platform, domain: IOMMU_DMA_DOMAIN) => platform.describeDomain(domain)!.walks;

t.test('until ConfigureDomain every access faults; then the guest tables translate', async (t) => {
  const { platform, V2, fn, domain, tables } = await unmanagedSetup(t);
  const pageA = stamp(platform, 0xaa);
  tables.mapPage(0x40_0000_1000, pageA);
  t.same(await platform.dma(fn, { address: 0x40_0000_1000, length: 4 }), {
    ok: false,
    faultType: TranslationFault,
    faultAddress: 0x40_0000_1000,
    blocked: false,
  });
  const config = { Type: DomainConfigurationArm64, Arm64: { Ttbr0: tables.root, InputSize0: 48, TranslationEnabled: true } };
  t.equal(V2.ConfigureDomain(domain, config), STATUS_SUCCESS);
  t.same(await platform.dma(fn, { address: 0x40_0000_1000 + 4, length: 4 }), { ok: true, data: new Uint8Array([0xaa, 0xaa, 0xaa, 0xaa]) });

  tables.mapPage(0x2000, stamp(platform, 1), { readOnly: true });
  tables.mapPage(0x3000, stamp(platform, 2), { accessFlag: false });
  t.match(await platform.dma(fn, { address: 0x2000, write: [1] }), { ok: false, faultType: PermissionFault, faultAddress: 0x2000 });
  t.match(await platform.dma(fn, { address: 0x3000, length: 1 }), { ok: false, faultType: AccessFlagFault, faultAddress: 0x3000 });

  const bypass = { Type: DomainConfigurationArm64, Arm64: { Ttbr0: tables.root, InputSize0: 48, TranslationEnabled: false } };
  t.equal(V2.ConfigureDomain(domain, bypass), STATUS_SUCCESS);
  t.same(await platform.dma(fn, { address: pageA, length: 2 }), { ok: true, data: new Uint8Array([0xaa, 0xaa]) }, 'TranslationEnabled false: identity');
});

t.test('without a flush the IOMMU may keep using the old descriptor; FlushDomainByVaList makes the new one visible and keeps the rest cached', async (t) => {
  const { platform, V2, fn, domain, tables } = await unmanagedSetup(t, 39);
  const pageA = stamp(platform, 0xa1);
  const pageB = stamp(platform, 0xb2);
  const pageC = stamp(platform, 0xc3);
  tables.mapPage(0x1000, pageA);
  tables.mapPage(0x2000, pageC);
  t.equal(
    V2.ConfigureDomain(domain, { Type: DomainConfigurationArm64, Arm64: { Ttbr0: tables.root, InputSize0: 39, TranslationEnabled: true } }),
    STATUS_SUCCESS,
  );
  const read = async (va: number) => {
    const result = await platform.dma(fn, { address: va, length: 1 });
    return result.ok ? result.data![0] : -1;
  };

  t.equal(await read(0x1000), 0xa1);
  t.equal(await read(0x2000), 0xc3);
  t.equal(walks(platform, domain), 2, 'one walk per page');
  t.equal(await read(0x1000), 0xa1);
  t.equal(walks(platform, domain), 2, 'cached: no new walk');

  tables.mapPage(0x1000, pageB); // the driver edits its table but does not flush yet
  t.equal(await read(0x1000), 0xa1, 'stale until flushed, as on hardware');

  t.equal(V2.FlushDomainByVaList(domain, true, 1, [0x1000 + 123]), STATUS_SUCCESS);
  t.equal(await read(0x1000), 0xb2, 'after the flush the new page is reached');
  t.equal(walks(platform, domain), 3, 'exactly one new walk, for the flushed address');
  t.equal(await read(0x2000), 0xc3);
  t.equal(walks(platform, domain), 3, 'the other translation stayed cached');

  tables.unmapPage(0x2000);
  t.equal(V2.FlushDomain(domain), STATUS_SUCCESS);
  t.equal(await read(0x1000), 0xb2);
  t.match(await platform.dma(fn, { address: 0x2000, length: 1 }), { ok: false, faultType: TranslationFault });
  t.equal(walks(platform, domain), 5, 'FlushDomain dropped everything: both pages walked again');
});

t.test('reconfiguring invalidates cached translations; blocks are cached whole', async (t) => {
  const { platform, V2, fn, domain, tables } = await unmanagedSetup(t);
  const block = platform.memory.allocateContiguousPages(512, 512) * PAGE;
  platform.memory.fill(block, 512 * PAGE, 0x5a);
  tables.mapBlock(2, 0x20_0000, block);
  const config = (root: number) => ({ Type: DomainConfigurationArm64, Arm64: { Ttbr0: root, InputSize0: 48, TranslationEnabled: true } });
  t.equal(V2.ConfigureDomain(domain, config(tables.root)), STATUS_SUCCESS);
  t.same(await platform.dma(fn, { address: 0x20_0000 + 7 * PAGE, length: 1 }), { ok: true, data: new Uint8Array([0x5a]) });
  t.same(await platform.dma(fn, { address: 0x20_0000 + 300 * PAGE, length: 1 }), { ok: true, data: new Uint8Array([0x5a]) });
  t.equal(walks(platform, domain), 1, 'one walk covers the whole 2 MiB block');

  const other = new GuestPageTables(platform, 48);
  other.mapPage(0x20_0000 + 7 * PAGE, stamp(platform, 0x77));
  t.equal(V2.ConfigureDomain(domain, config(other.root)), STATUS_SUCCESS);
  t.same(await platform.dma(fn, { address: 0x20_0000 + 7 * PAGE, length: 1 }), { ok: true, data: new Uint8Array([0x77]) });
  t.match(await platform.dma(fn, { address: 0x20_0000 + 300 * PAGE, length: 1 }), { ok: false, faultType: TranslationFault });
});
