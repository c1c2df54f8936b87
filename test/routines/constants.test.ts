import t from 'tap';
import * as viommu from '../../machine/index.js';
import { NT_SUCCESS } from '../../machine/index.js';

/** The numbers the contract pins ("Status numbers" and "Enums (numbering pinned)"), written out here. */
const STATUS = {
  STATUS_SUCCESS: 0x0,
  STATUS_UNSUCCESSFUL: 0xc0000001,
  STATUS_NOT_IMPLEMENTED: 0xc0000002,
  STATUS_INVALID_PARAMETER: 0xc000000d,
  STATUS_ACCESS_DENIED: 0xc0000022,
  STATUS_BUFFER_TOO_SMALL: 0xc0000023,
  STATUS_INVALID_PARAMETER_MIX: 0xc0000030,
  STATUS_INSUFFICIENT_RESOURCES: 0xc000009a,
  STATUS_NOT_SUPPORTED: 0xc00000bb,
  STATUS_INVALID_PARAMETER_1: 0xc00000ef,
  STATUS_INVALID_PARAMETER_2: 0xc00000f0,
  STATUS_INVALID_PARAMETER_3: 0xc00000f1,
  STATUS_INVALID_PARAMETER_4: 0xc00000f2,
  STATUS_INVALID_PARAMETER_5: 0xc00000f3,
  STATUS_INVALID_PARAMETER_6: 0xc00000f4,
  STATUS_INVALID_PARAMETER_7: 0xc00000f5,
  STATUS_NOT_FOUND: 0xc0000225,
  STATUS_RESOURCE_IN_USE: 0xc0000708,
};

/** Each enum as its Windows type name, members in declaration order. */
const ENUMS: Record<string, Record<string, number>> = {
  IOMMU_DMA_DOMAIN_TYPE: {
    DomainTypeTranslate: 0,
    DomainTypePassThrough: 1,
    DomainTypeUnmanaged: 2,
    DomainTypeTranslateS1: 3,
    DomainTypeMax: 4,
  },
  IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE: {
    IommuDmaLogicalAllocatorNone: 0,
    IommuDmaLogicalAllocatorBuddy: 1,
    IommuDmaLogicalAllocatorMax: 2,
  },
  IOMMU_MAP_PHYSICAL_ADDRESS_TYPE: {
    MapPhysicalAddressTypeMdl: 0,
    MapPhysicalAddressTypeContiguousRange: 1,
    MapPhysicalAddressTypePfn: 2,
    MapPhysicalAddressTypeMax: 3,
  },
  DOMAIN_CONFIGURATION_ARCH: {
    DomainConfigurationArm64: 0,
    DomainConfigurationX64: 1,
    DomainConfigurationInvalid: 2,
  },
  FAULT_INFORMATION_ARCH: {
    FaultInformationInvalid: 0,
    FaultInformationArm64: 1,
    FaultInformationX64: 2,
  },
  FAULT_INFORMATION_ARM64_TYPE: {
    UnsupportedUpstreamTransaction: 0,
    AddressSizeFault: 1,
    TlbMatchConflict: 2,
    ExternalFault: 3,
    PermissionFault: 4,
    AccessFlagFault: 5,
    TranslationFault: 6,
    MaxFaultType: 7,
  },
  IOMMU_DEVICE_CREATION_CONFIGURATION_TYPE: {
    IommuDeviceCreationConfigTypeNone: 0,
    IommuDeviceCreationConfigTypeAcpi: 1,
    IommuDeviceCreationConfigTypeDeviceId: 2,
    IommuDeviceCreationConfigTypeMax: 3,
  },
};

const ACCESS = { IOMMU_ACCESS_NONE: 0, IOMMU_ACCESS_READ: 1, IOMMU_ACCESS_WRITE: 2 };

const exported = viommu as unknown as Record<string, unknown>;

t.test('every NTSTATUS is exported under its Windows name with its unsigned value', async (t) => {
  for (const [name, value] of Object.entries(STATUS)) {
    t.equal(exported[name], value, `${name} = 0x${value.toString(16).toUpperCase().padStart(8, '0')}`);
    t.ok(Number.isSafeInteger(exported[name]) && (exported[name] as number) >= 0, `${name} is an unsigned number`);
  }
  t.equal(viommu.STATUS_UNSUCCESSFUL, 3221225473, '0xC0000001 is 3221225473');
  t.not(viommu.STATUS_UNSUCCESSFUL, 0xc0000001 | 0, 'never the negative int32');
  t.equal(viommu.STATUS_RESOURCE_IN_USE, 3221227272, 'STATUS_RESOURCE_IN_USE stands for "STATUS_IN_USE"');
  t.same(
    [1, 2, 3, 4, 5, 6, 7].map((n) => exported[`STATUS_INVALID_PARAMETER_${n}`]),
    [0xc00000ef, 0xc00000f0, 0xc00000f1, 0xc00000f2, 0xc00000f3, 0xc00000f4, 0xc00000f5],
    'STATUS_INVALID_PARAMETER_1..7 are consecutive',
  );
  const values = Object.values(STATUS);
  t.equal(new Set(values).size, values.length, 'no two statuses share a number');
});

t.test('the NTSTATUS const object holds exactly the pinned codes', async (t) => {
  t.same({ ...(exported.NTSTATUS as object) }, STATUS);
  t.same(Object.keys(exported.NTSTATUS as object).sort(), Object.keys(STATUS).sort());
});

t.test('every enum member is exported with the pinned value, and each const object matches exactly', async (t) => {
  for (const [typeName, members] of Object.entries(ENUMS)) {
    for (const [member, value] of Object.entries(members)) t.equal(exported[member], value, `${member} = ${value}`);
    t.same({ ...(exported[typeName] as object) }, members, `${typeName} has exactly these members and values`);
    t.same(Object.keys(exported[typeName] as object), Object.keys(members), `${typeName} keeps the header order`);
  }
});

t.test('IOMMU_ACCESS_* bits', async (t) => {
  for (const [name, value] of Object.entries(ACCESS)) t.equal(exported[name], value, `${name} = ${value}`);
  t.equal(viommu.IOMMU_ACCESS_READ | viommu.IOMMU_ACCESS_WRITE, 3);
  t.equal(viommu.IOMMU_ACCESS_READ & viommu.IOMMU_ACCESS_WRITE, 0, 'read and write are distinct bits');
});

t.test('NT_SUCCESS(s) is true exactly when s < 0x80000000', async (t) => {
  for (const [name, value] of Object.entries(STATUS)) {
    t.equal(NT_SUCCESS(value), value === 0, `NT_SUCCESS(${name})`);
  }
  const successes = [0, 1, 0x103 /* STATUS_PENDING */, 0x40000000, 0x40000001, 0x7fffffff];
  const failures = [0x80000000, 0x80000005 /* STATUS_BUFFER_OVERFLOW */, 0xbfffffff, 0xc0000000, 0xc000000d, 0xfffffffe, 0xffffffff];
  for (const s of successes) t.equal(NT_SUCCESS(s), true, `NT_SUCCESS(0x${s.toString(16)}) (success or informational)`);
  for (const s of failures) t.equal(NT_SUCCESS(s), false, `NT_SUCCESS(0x${s.toString(16)}) (warning or error)`);
  for (const s of [0x7ffffffe, 0x7fffffff, 0x80000000, 0x80000001]) t.equal(NT_SUCCESS(s), s < 0x80000000, `boundary 0x${s.toString(16)}`);
  t.type(NT_SUCCESS(0), 'boolean');
  t.type(NT_SUCCESS(0xc0000001), 'boolean');
});
