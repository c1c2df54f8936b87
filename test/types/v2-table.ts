/**
 * Type tests for the public API, compiled (never run) by `npm run check` and by
 * test/types/type-tests.test.ts, and copied into the packed-package consumer project
 * (test/package/declarations.test.ts), where 'viommu' is the installed tarball.
 *
 * `correctUse` calls each of the 22 routines as a TypeScript driver would and must compile.
 * Each `@ts-expect-error` line below is a misuse that must not compile; the comment names the
 * TypeScript error code it must fail with, and type-tests.test.ts checks that it fails with
 * that code on that line (so a misuse cannot pass by failing for another reason). The file
 * uses no Node.js type: the consumer project has no @types/node.
 */
import {
  createPlatform,
  DomainConfigurationArm64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  FaultInformationArm64,
  IOMMU_ACCESS_READ,
  IOMMU_ACCESS_WRITE,
  IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
  NT_SUCCESS,
  Platform,
  restorePlatform,
  STATUS_INVALID_PARAMETER_1,
  STATUS_SUCCESS,
  TranslationFault,
  type DMA_IOMMU_INTERFACE_EX,
  type DMA_IOMMU_INTERFACE_V2,
  type DomainSummary,
  type FAULT_INFORMATION,
  type INPUT_MAPPING_ELEMENT,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_DOMAIN_TYPE,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_INTERFACE_STATE_CHANGE,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  type NTSTATUS,
  type Out,
  type PciFunction,
  type PlatformOptions,
  type TranslationView,
} from 'viommu';

/** What the misuse cases below work with: one of each handle, as a driver has them. */
export interface Handles {
  V2: DMA_IOMMU_INTERFACE_V2;
  pdo: PciFunction;
  device: IOMMU_DMA_DEVICE;
  domain: IOMMU_DMA_DOMAIN;
  token: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  segment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT;
}

/** Every routine, the platform surface and the options, used as documented. */
export async function correctUse(): Promise<Handles> {
  const deviceErrors: string[] = [];
  const options: PlatformOptions = {
    workers: 2,
    memoryBytes: 16 * 1024 * 1024,
    arch: 'arm64',
    workerUrl: 'file:///app/dma-worker.js',
    onDeviceError: (fn, error) => deviceErrors.push(`${fn.bdf}: ${String(error)}`),
    onCallbackError: (error) => deviceErrors.push(String(error)),
  };
  const platform: Platform = await createPlatform(options);
  const pdo: PciFunction = platform.bus.addFunction({ bus: 0, device: 1, function: 0, model: 'copy-engine' });

  const table: Out<DMA_IOMMU_INTERFACE_EX> = {};
  const got: NTSTATUS = platform.IoGetIommuInterfaceEx(2, 0, table);
  if (got !== STATUS_SUCCESS || table.value === undefined) throw new Error('IoGetIommuInterfaceEx');
  const { V2 } = table.value;
  const check = (status: NTSTATUS) => {
    if (!NT_SUCCESS(status)) throw new Error(`0x${status.toString(16)}`);
  };

  const deviceOut: Out<IOMMU_DMA_DEVICE> = {};
  check(V2.CreateDevice(pdo, null, deviceOut));
  const device = deviceOut.value!;
  const available: Out<number> = {};
  V2.QueryAvailableDomainTypes(device, available);
  const seen: IOMMU_INTERFACE_STATE_CHANGE[] = [];
  const callback = (change: IOMMU_INTERFACE_STATE_CHANGE, _context: unknown) => seen.push(change);
  check(V2.RegisterInterfaceStateChangeCallback(callback, null, device, { AsULONG: IOMMU_STATE_FIELD_AVAILABLE_DOMAIN_TYPES }));
  check(V2.UnregisterInterfaceStateChangeCallback(callback, device));

  const domainOut: Out<IOMMU_DMA_DOMAIN> = {};
  const allocator = { LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy, BuddyAllocatorConfig: { AddressWidth: 48 } };
  const regions = { Base: 0x10_0000, NumberOfPages: 16, ShouldMap: false, RegionNext: null };
  check(V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, allocator, regions, domainOut));
  const domain = domainOut.value!;
  check(V2.AttachDeviceEx(domain, device));
  const faults: FAULT_INFORMATION[] = [];
  check(V2.SetDeviceFaultReportingEx(device, pdo.inputMappingId, true, { FaultHandler: (_context, info) => faults.push(info), FaultContext: pdo }));

  const pfns = platform.memory.allocatePages(2);
  const descriptions: IOMMU_MAP_PHYSICAL_ADDRESS[] = [
    { MapType: MapPhysicalAddressTypeMdl, Mdl: { Mdl: platform.memory.mdl(pfns) } },
    { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: pfns[0]! * 4096, Size: 4096 } },
    { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: pfns, NumberOfPages: pfns.length } },
  ];
  const iova: Out<number> = {};
  check(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE, descriptions[0]!, null, 0x1000, undefined, iova));
  const view: TranslationView | undefined = platform.inspectTranslation(domain, iova.value!);
  const summary: DomainSummary | undefined = platform.describeDomain(domain);
  void [view, summary];
  const read = await platform.dma(pdo, { address: iova.value!, length: 4 });
  if (!read.ok && read.faultType === TranslationFault) throw new Error('unmapped');
  check(V2.UnmapLogicalRange(domain, iova.value!, pfns.length));

  const tokenOut: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN> = {};
  check(V2.ReserveLogicalAddressRange(domain, 8 * 4096, null, null, null, tokenOut));
  const token = tokenOut.value!;
  const base: number = token.LogicalAddressBase + token.Size;
  void base;
  const segmentOut: Out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT> = {};
  check(V2.MapReservedLogicalRange(token, 0, IOMMU_ACCESS_READ, descriptions[2]!, segmentOut));
  const segment = segmentOut.value!;
  check(V2.UnmapReservedLogicalRange(segment));
  check(V2.FreeReservedLogicalAddressRange(token));

  const passThrough: Out<IOMMU_DMA_DOMAIN> = {};
  check(V2.CreateDomainEx(DomainTypePassThrough, { AsUlonglong: 0 }, null, null, passThrough));
  check(V2.MapIdentityRangeEx(passThrough.value!, IOMMU_ACCESS_READ, descriptions[1]!));
  check(V2.UnmapIdentityRangeEx(passThrough.value!, descriptions[1]!));

  const unmanaged: Out<IOMMU_DMA_DOMAIN> = {};
  check(V2.CreateDomainEx(DomainTypeUnmanaged, { AsUlonglong: 0 }, null, null, unmanaged));
  const arm64 = { Ttbr0: pfns[1]! * 4096, InputSize0: 39, TranslationEnabled: true };
  check(V2.ConfigureDomain(unmanaged.value!, { Type: DomainConfigurationArm64, Arm64: arm64 }));
  check(V2.FlushDomain(unmanaged.value!));
  check(V2.FlushDomainByVaList(unmanaged.value!, true, 2, [0x1000, 0x2000]));
  const ids: INPUT_MAPPING_ELEMENT[] = [];
  const returned: Out<number> = {};
  check(V2.QueryInputMappings(pdo, ids, 4, returned));
  check(V2.QueryInputMappings(pdo, new Uint32Array(1), 4));

  for (const info of faults) {
    // The variant says which member is there; the other reads as undefined.
    if (info.Type === FaultInformationArm64) void [info.Arm64.PhysicalDeviceObject?.bdf, info.Arm64.Flags.WriteNotRead, info.Arm64.DomainHandle?.id];
    void info.X64?.PciSegment;
  }
  check(V2.SetDeviceFaultReportingEx(device, pdo.inputMappingId, false));
  check(V2.DetachDeviceEx(device));
  check(V2.DeleteDomain(domain));
  check(V2.DeleteDevice(device));
  if (V2.DeleteDomain(domain) === STATUS_INVALID_PARAMETER_1) deviceErrors.push('deleted twice');

  const bytes: Uint8Array = platform.saveState();
  const restored = await restorePlatform(bytes, { workers: 1, workerUrl: { href: 'file:///app/dma-worker.js' }, onDeviceError: () => {} });
  await restored.platform.close();
  await platform.close();
  return { V2, pdo, device, domain, token, segment };
}

/** Each misuse must fail to compile (the code after `@ts-expect-error` is the error expected). */
export function misuse({ V2, pdo, device, domain, token, segment }: Handles, someNumber: number): void {
  const domainOut: Out<IOMMU_DMA_DOMAIN> = {};
  const deviceOut: Out<IOMMU_DMA_DEVICE> = {};
  const iova: Out<number> = {};
  const range = { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: 0, Size: 4096 } } as const;

  // Swapped arguments.
  // @ts-expect-error TS2345 a device where the domain goes, a domain where the device goes
  V2.AttachDeviceEx(device, domain);
  // @ts-expect-error TS2345 Permissions and the physical description swapped
  V2.MapIdentityRangeEx(domain, range, IOMMU_ACCESS_READ);
  // @ts-expect-error TS2345 the Out holder and the PDO swapped
  V2.CreateDevice(deviceOut, null, pdo);

  // A handle of another kind.
  // @ts-expect-error TS2345 a domain where a DMA device is expected
  V2.DeleteDevice(domain);
  // @ts-expect-error TS2345 a domain where a DMA device is expected
  V2.DetachDeviceEx(domain);
  // @ts-expect-error TS2345 a DMA device where a domain is expected
  V2.FlushDomain(device);
  // @ts-expect-error TS2345 a domain where a token is expected
  V2.FreeReservedLogicalAddressRange(domain);
  // @ts-expect-error TS2345 a token where a domain is expected
  V2.DeleteDomain(token);
  // @ts-expect-error TS2345 a DMA device where the PDO is expected
  V2.CreateDevice(device, null, deviceOut);
  // @ts-expect-error TS2345 a DMA device where the PDO is expected
  V2.QueryInputMappings(device, [], 4);
  // @ts-expect-error TS2345 a token where a mapped segment is expected
  V2.UnmapReservedLogicalRange(token);
  // @ts-expect-error TS2345 a segment where a token is expected
  V2.MapReservedLogicalRange(segment, 0, IOMMU_ACCESS_READ, range, {});
  // @ts-expect-error TS2345 an Out<DMA device> where the new domain goes
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, null, null, deviceOut);

  // Handles made up by the caller, and handles that may not be there.
  // @ts-expect-error TS2345 an object that looks like a domain handle is not one
  V2.DeleteDomain({ kind: 'IOMMU_DMA_DOMAIN', id: domain.id });
  // @ts-expect-error TS2345 a made-up PDO
  V2.CreateDevice({ slot: 0, requesterId: 8, inputMappingId: 8, externalFacing: false, behindIommu: true, bdf: '00:01.0' }, null, deviceOut);
  // @ts-expect-error TS2345 a made-up token
  V2.FreeReservedLogicalAddressRange({ LogicalAddressBase: 0x1000, Size: 0x1000 });
  // @ts-expect-error TS2345 the Out holder's value is undefined until the routine succeeded
  V2.AttachDeviceEx(domainOut.value, device);
  // @ts-expect-error TS2345 null for an _In_ handle
  V2.DeleteDomain(null);
  // @ts-expect-error TS2540 handle fields are read-only
  domain.id = 7;

  // Numbers where an enum member is expected, and enum values out of range.
  // @ts-expect-error TS2345 a number where IOMMU_DMA_DOMAIN_TYPE is expected
  V2.CreateDomainEx(someNumber, { AsUlonglong: 0 }, null, null, domainOut);
  // @ts-expect-error TS2345 9 is no IOMMU_DMA_DOMAIN_TYPE
  V2.CreateDomainEx(9, { AsUlonglong: 0 }, null, null, domainOut);
  // @ts-expect-error TS2322 a number where IOMMU_DMA_DOMAIN_TYPE is expected
  const type: IOMMU_DMA_DOMAIN_TYPE = someNumber;
  void type;
  // @ts-expect-error TS2322 7 is no IOMMU_MAP_PHYSICAL_ADDRESS_TYPE
  V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, { MapType: 7, ContiguousRange: { Base: 0, Size: 4096 } });
  // @ts-expect-error TS2322 a number where the allocator type is expected
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: someNumber }, null, domainOut);
  // @ts-expect-error TS2322 a number where DOMAIN_CONFIGURATION_ARCH is expected
  V2.ConfigureDomain(domain, { Type: someNumber, Arm64: { Ttbr0: 0, InputSize0: 39, TranslationEnabled: true } });

  // Wrong types.
  // @ts-expect-error TS2345 an address as a string
  V2.UnmapLogicalRange(domain, '0x1000', 1);
  // @ts-expect-error TS2345 Permissions as a string
  V2.MapLogicalRangeEx(domain, 'rw', range, null, null, null, iova);
  // @ts-expect-error TS2345 a number for a BOOLEAN
  V2.FlushDomainByVaList(domain, 1, 1, [0x1000]);
  // @ts-expect-error TS2345 the VaList as one address, not a list
  V2.FlushDomainByVaList(domain, true, 1, 0x1000);
  // @ts-expect-error TS2322 QueryAvailableDomainTypes returns nothing, as in Windows
  const status: NTSTATUS = V2.QueryAvailableDomainTypes(device, iova);
  void status;
  // @ts-expect-error TS2322 5 is no NTSTATUS
  const made: NTSTATUS = 5;
  void made;
  // @ts-expect-error TS2367 a status never equals a number that is no NTSTATUS
  if (V2.FlushDomain(domain) === 5) return;
  // @ts-expect-error TS2322 a FaultHandler must be a function
  V2.SetDeviceFaultReportingEx(device, pdo.inputMappingId, true, { FaultHandler: 'log' });
  // @ts-expect-error TS2345 a state-change callback takes the state change first
  V2.RegisterInterfaceStateChangeCallback((mask: number) => mask, null, device, { AsULONG: 1 });
  // @ts-expect-error TS2345 the Flags union by value, not a bare number
  V2.CreateDomainEx(DomainTypeTranslate, 0, null, null, domainOut);

  // Misspelt structure fields.
  // @ts-expect-error TS2353 ContiguousRange.Sise
  V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, { MapType: MapPhysicalAddressTypeContiguousRange, ContiguousRange: { Base: 0, Sise: 4096 } });
  // @ts-expect-error TS2561 BuddyAllocatorConfig.AdressWidth
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AdressWidth: 48 } }, null, domainOut);
  // @ts-expect-error TS2561 ShouldMapp for ShouldMap
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlonglong: 0 }, null, { Base: 0, NumberOfPages: 1, ShouldMapp: true }, domainOut);
  // @ts-expect-error TS2561 TranslationEnable for TranslationEnabled
  V2.ConfigureDomain(domain, { Type: DomainConfigurationArm64, Arm64: { Ttbr0: 0, InputSize0: 39, TranslationEnable: true } });
  // @ts-expect-error TS2561 AsUlongLong for AsUlonglong
  V2.CreateDomainEx(DomainTypeTranslate, { AsUlongLong: 0 }, null, null, domainOut);
  const mdl = { ByteCount: 4096, ByteOffset: 0, Pfns: [1] };
  // @ts-expect-error TS2353 the MDL member with a contiguous-range MapType
  V2.MapIdentityRangeEx(domain, IOMMU_ACCESS_READ, { MapType: MapPhysicalAddressTypeContiguousRange, Mdl: { Mdl: mdl } });
  // @ts-expect-error TS2551 FaultAdress for FaultAddress
  V2.SetDeviceFaultReportingEx(device, 0, true, { FaultHandler: (_context, info) => info.Arm64?.FaultAdress });
}

/** The platform surface: options are checked, internals are not there. */
export async function platformMisuse(platform: Platform): Promise<void> {
  // @ts-expect-error TS2561 an unknown option (workers, misspelt)
  await createPlatform({ worker: 2 });
  // @ts-expect-error TS2322 workers is a number
  await createPlatform({ workers: '2' });
  // @ts-expect-error TS2322 onDeviceError gets the function and the error
  await createPlatform({ onDeviceError: (fn: string) => fn });
  // @ts-expect-error TS2353 restorePlatform takes how the machine runs, not what it is
  await restorePlatform(new Uint8Array(0), { memoryBytes: 4096 });
  // @ts-expect-error TS2673 only createPlatform builds a Platform
  new Platform();
  // @ts-expect-error TS2339 the IOMMU's internals are not on the platform
  void platform.iommu;
  // @ts-expect-error TS2339 Platform is no EventEmitter
  platform.on('deviceError', () => {});
}
