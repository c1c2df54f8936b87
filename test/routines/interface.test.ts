import t from 'tap';
import {
  DomainTypeTranslate,
  IOMMU_ACCESS_READ,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  type DMA_IOMMU_INTERFACE_EX,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { buddy, contiguous, out, PAGE, platformFor, v2Of, ZERO_FLAGS } from '../helpers/fixture.js';

/** DMA_IOMMU_INTERFACE_V2 in wdm.h order (reference digest §5), written out here on purpose. */
const WDM_ORDER = [
  'CreateDomainEx',
  'DeleteDomain',
  'AttachDeviceEx',
  'DetachDeviceEx',
  'FlushDomain',
  'FlushDomainByVaList',
  'QueryInputMappings',
  'MapLogicalRangeEx',
  'UnmapLogicalRange',
  'MapIdentityRangeEx',
  'UnmapIdentityRangeEx',
  'SetDeviceFaultReportingEx',
  'ConfigureDomain',
  'QueryAvailableDomainTypes',
  'RegisterInterfaceStateChangeCallback',
  'UnregisterInterfaceStateChangeCallback',
  'ReserveLogicalAddressRange',
  'FreeReservedLogicalAddressRange',
  'MapReservedLogicalRange',
  'UnmapReservedLogicalRange',
  'CreateDevice',
  'DeleteDevice',
];

t.test('Version 2 fills { Size: 0xC0, Version: 2, V2 } with the 22 routines in wdm.h order', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const table = out<DMA_IOMMU_INTERFACE_EX>();
  t.equal(platform.IoGetIommuInterfaceEx(2, 0, table), STATUS_SUCCESS);
  const ex = table.value!;
  t.ok(ex, 'InterfaceOut.value is filled');
  t.equal(ex.Size, 0xc0);
  t.equal(ex.Size, 192);
  t.equal(ex.Version, 2);
  t.same(Object.keys(ex.V2), WDM_ORDER, 'Object.keys(V2) lists the 22 names in wdm.h order');
  t.equal(Object.keys(ex.V2).length, 22);
  for (const name of WDM_ORDER) t.type((ex.V2 as unknown as Record<string, unknown>)[name], 'function', `${name} is a function`);
});

t.test('every Version other than 2 is STATUS_NOT_SUPPORTED and leaves InterfaceOut untouched', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  for (const version of [1, 0, 3, 4, -1, -2, 2.5, 0xffffffff, 2 ** 32 + 2, NaN, '2', 2n, null, undefined, [2], { Version: 2 }]) {
    const table = out<DMA_IOMMU_INTERFACE_EX>();
    let status: number | undefined;
    t.doesNotThrow(
      () => {
        status = platform.IoGetIommuInterfaceEx(version as number, 0, table);
      },
      `Version ${String(version)} does not throw`,
    );
    t.equal(status, STATUS_NOT_SUPPORTED, `Version ${String(version)}`);
    t.strictSame(table, {}, `Version ${String(version)}: InterfaceOut untouched`);
    t.notOk('value' in table, `Version ${String(version)}: no value key was even created`);
  }
});

t.test('Flags !== 0 is STATUS_INVALID_PARAMETER_2 and leaves InterfaceOut untouched', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  for (const flags of [1, 2, 0x80000000, 2 ** 40, -1, 0.5, NaN, '0', 0n, null, undefined, {}, { AsUlonglong: 0 }, [0], false]) {
    const table = out<DMA_IOMMU_INTERFACE_EX>();
    let status: number | undefined;
    t.doesNotThrow(
      () => {
        status = platform.IoGetIommuInterfaceEx(2, flags as number, table);
      },
      `Flags ${String(flags)} does not throw`,
    );
    t.equal(status, STATUS_INVALID_PARAMETER_2, `Flags ${typeof flags === 'object' && flags !== null ? JSON.stringify(flags) : String(flags)}`);
    t.strictSame(table, {}, `Flags ${String(flags)}: InterfaceOut untouched`);
  }
  const table = out<DMA_IOMMU_INTERFACE_EX>();
  t.equal(platform.IoGetIommuInterfaceEx(2, -0, table), STATUS_SUCCESS, '-0 is zero');
});

t.test('an InterfaceOut that is not an object is a bad parameter 3, never a throw', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  for (const bad of [null, undefined, 0, 'out', true]) {
    let status: number | undefined;
    t.doesNotThrow(() => {
      status = platform.IoGetIommuInterfaceEx(2, 0, bad as never);
    });
    t.equal(status, STATUS_INVALID_PARAMETER_3, `InterfaceOut ${String(bad)}`);
  }
});

t.test('an existing value in InterfaceOut survives a failed call and is replaced by a successful one', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const sentinel = { Size: 1, Version: 1, V2: {} } as unknown as DMA_IOMMU_INTERFACE_EX;
  const table = { value: sentinel };
  t.equal(platform.IoGetIommuInterfaceEx(1, 0, table), STATUS_NOT_SUPPORTED);
  t.equal(table.value, sentinel, 'unsupported version: same object, not rewritten');
  t.same(table.value, { Size: 1, Version: 1, V2: {} });
  t.equal(platform.IoGetIommuInterfaceEx(2, 7, table), STATUS_INVALID_PARAMETER_2);
  t.equal(table.value, sentinel, 'bad flags: same object, not rewritten');
  t.equal(platform.IoGetIommuInterfaceEx(2, 0, table), STATUS_SUCCESS);
  t.not(table.value, sentinel);
  t.equal(table.value.Version, 2);
});

t.test('routines work detached from the table (destructured, or called with any this)', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const {
    CreateDomainEx,
    DeleteDomain,
    CreateDevice,
    DeleteDevice,
    AttachDeviceEx,
    DetachDeviceEx,
    MapLogicalRangeEx,
    UnmapLogicalRange,
    MapIdentityRangeEx,
    UnmapIdentityRangeEx,
    QueryAvailableDomainTypes,
  } = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(CreateDevice(fn, null, device), STATUS_SUCCESS, 'CreateDevice detached');
  const mask = out<number>();
  t.equal(QueryAvailableDomainTypes.call(undefined, device.value!, mask), undefined, 'QueryAvailableDomainTypes returns nothing');
  t.equal(mask.value, 0b111, 'QueryAvailableDomainTypes detached (arm64 default policy: Translate, PassThrough, Unmanaged)');

  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, buddy(32), null, domain), STATUS_SUCCESS, 'CreateDomainEx detached');
  t.equal(AttachDeviceEx.call({}, domain.value!, device.value!), STATUS_SUCCESS, 'AttachDeviceEx with a foreign this');
  const [pfn] = platform.memory.allocatePages(1);
  const logical = out<number>();
  t.equal(MapLogicalRangeEx(domain.value!, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE), null, null, null, logical), STATUS_SUCCESS);
  t.same(platform.inspectTranslation(domain.value!, logical.value!), { physicalAddress: pfn! * PAGE, access: IOMMU_ACCESS_READ, leafBytes: PAGE });
  t.equal(UnmapLogicalRange(domain.value!, logical.value!, 1), STATUS_SUCCESS);

  const plain = out<IOMMU_DMA_DOMAIN>();
  t.equal(CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, plain), STATUS_SUCCESS);
  t.equal(MapIdentityRangeEx.call(null, plain.value!, IOMMU_ACCESS_READ, contiguous(pfn! * PAGE, PAGE)), STATUS_SUCCESS);
  t.equal(UnmapIdentityRangeEx.call(null, plain.value!, contiguous(pfn! * PAGE, PAGE)), STATUS_SUCCESS);
  t.equal(DeleteDomain(plain.value!), STATUS_SUCCESS);

  t.equal(DetachDeviceEx(device.value!), STATUS_SUCCESS, 'DetachDeviceEx detached');
  t.equal(DeleteDomain(domain.value!), STATUS_SUCCESS, 'DeleteDomain detached');
  t.equal(DeleteDevice(device.value!), STATUS_SUCCESS, 'DeleteDevice detached');
});

t.test('two tables from one platform share its state; handles do not cross platforms', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const other = await platformFor(t, { workers: 0 });
  const first = v2Of(platform);
  const second = v2Of(platform);
  const foreign = v2Of(other);
  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(first.CreateDomainEx(DomainTypeTranslate, ZERO_FLAGS, null, null, domain), STATUS_SUCCESS);
  t.equal(foreign.DeleteDomain(domain.value!), STATUS_INVALID_PARAMETER_1, "another platform's table does not know the domain");
  t.ok(platform.describeDomain(domain.value!), 'the domain is still alive');
  t.equal(other.describeDomain(domain.value!), undefined);
  t.equal(second.DeleteDomain(domain.value!), STATUS_SUCCESS, 'a second table of the same platform deletes it');
  t.equal(first.DeleteDomain(domain.value!), STATUS_INVALID_PARAMETER_1, 'and the first table sees it gone');

  const fn = platform.bus.addFunction({ bus: 0, device: 2, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(foreign.CreateDevice(fn, null, device), STATUS_INVALID_PARAMETER_1, "a PCI function of another platform is not this platform's PDO");
  t.strictSame(device, {});
  t.equal(first.CreateDevice(fn, null, device), STATUS_SUCCESS);
  t.equal(foreign.DeleteDevice(device.value!), STATUS_INVALID_PARAMETER_1);
  t.equal(second.DeleteDevice(device.value!), STATUS_SUCCESS);
});
