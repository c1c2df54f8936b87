import t from 'tap';
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  IOMMU_ACCESS_WRITE,
  STATUS_INVALID_PARAMETER_1,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  TranslationFault,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
} from '../../machine/index.js';
import { buddy, contiguous, deviceInTranslateDomain, domainOf, mdlOf, out, PAGE, platformFor, RW, v2Of, watch } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/** DeleteDomain: unknown and stale handles, domains still in use, and what deleting a domain takes down with it. */

t.test('DeleteDomain rejects a handle it never issued or already deleted (STATUS_INVALID_PARAMETER_1)', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const { fn, device, domain } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const [pfn] = platform.memory.allocatePages(1);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, RW, contiguous(pfn! * PAGE, PAGE), null, null, null, logical), STATUS_SUCCESS);
  const gone = domainOf(V2, DomainTypeTranslate, buddy());
  t.equal(V2.DeleteDomain(gone), STATUS_SUCCESS);
  const check = watch(platform, domain, [logical.value!, 0]);
  const bad: Array<[string, unknown]> = [
    ['a spread copy', { ...domain }],
    ['a look-alike', { kind: 'IOMMU_DMA_DOMAIN', id: domain.id }],
    ['an object inheriting from the handle', Object.create(domain)],
    ['a deleted domain', gone],
    ['a DMA device handle', device],
    ['the PCI function', fn],
    ['null', null],
    ['undefined', undefined],
    ['0', 0],
    ['its id', domain.id],
  ];
  for (const [what, handle] of bad) {
    t.equal(untyped(V2).DeleteDomain(handle), STATUS_INVALID_PARAMETER_1, what);
    check(t, what);
  }
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS, 'the device was still attached to the real domain');
});

t.test('DeleteDomain with devices attached is STATUS_RESOURCE_IN_USE and changes nothing', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  const { device, domain } = deviceInTranslateDomain(platform, V2, { device: 1 });
  const second = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(platform.bus.addFunction({ bus: 0, device: 2, function: 0 }), null, second), STATUS_SUCCESS);
  t.equal(V2.AttachDeviceEx(domain, second.value!), STATUS_SUCCESS);
  const [pfn] = platform.memory.allocatePages(1);
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, IOMMU_ACCESS_WRITE, contiguous(pfn! * PAGE, PAGE), null, null, null, logical), STATUS_SUCCESS);
  const check = watch(platform, domain, [logical.value!]);
  t.match(platform.describeDomain(domain), { devices: 2 });
  t.equal(V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, 'two devices attached');
  check(t, 'two devices attached');
  t.equal(V2.DetachDeviceEx(device), STATUS_SUCCESS);
  const afterDetach = watch(platform, domain, [logical.value!]);
  t.equal(V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, 'one device still attached');
  afterDetach(t, 'one device attached');
  t.equal(V2.DetachDeviceEx(device), STATUS_INVALID_PARAMETER_1, 'the refused delete did not detach anything back');
  t.equal(V2.DetachDeviceEx(second.value!), STATUS_SUCCESS, 'the second device was still attached');
  t.equal(V2.DeleteDomain(domain), STATUS_SUCCESS, 'no device left');
});

t.test('DeleteDomain tears down remaining mappings, returns page tables, and kills the handle everywhere', async (t) => {
  const platform = await platformFor(t, { workers: 0, maxDomains: 2 });
  const V2 = v2Of(platform);
  const baseline = platform.pageTablesInUse;
  const pfns = platform.memory.allocatePages(8);
  const keeper = domainOf(V2, DomainTypeTranslate, null);
  const keep = out<number>();
  t.equal(V2.MapLogicalRangeEx(keeper, RW, contiguous(pfns[7]! * PAGE, PAGE), 0x40000000, null, null, keep), STATUS_SUCCESS);
  const withKeeper = platform.pageTablesInUse;
  const domain = domainOf(V2, DomainTypeTranslate, buddy(40), { Base: 0x200000, NumberOfPages: 2, ShouldMap: true });
  const logical = out<number>();
  t.equal(V2.MapLogicalRangeEx(domain, RW, mdlOf(platform, pfns.slice(0, 5)), null, null, null, logical), STATUS_SUCCESS);
  t.ok(platform.pageTablesInUse > withKeeper, 'the domain holds page tables');
  const keeperView = { domain: platform.describeDomain(keeper), translation: platform.inspectTranslation(keeper, keep.value! + 9) };

  t.equal(V2.DeleteDomain(domain), STATUS_SUCCESS, 'logical and identity mappings remain: still deletable');
  t.equal(platform.describeDomain(domain), undefined, 'the domain is gone');
  t.equal(platform.inspectTranslation(domain, logical.value!), undefined);
  t.equal(platform.pageTablesInUse, withKeeper, 'all its page tables were returned');
  t.same(
    { domain: platform.describeDomain(keeper), translation: platform.inspectTranslation(keeper, keep.value! + 9) },
    keeperView,
    'another domain is untouched',
  );
  t.same(keeperView.translation, { physicalAddress: pfns[7]! * PAGE + 9, access: RW, leafBytes: PAGE });

  const stale: Array<[string, () => unknown]> = [
    ['DeleteDomain', () => V2.DeleteDomain(domain)],
    ['AttachDeviceEx', () => untyped(V2).AttachDeviceEx(domain, null)],
    ['MapLogicalRangeEx', () => V2.MapLogicalRangeEx(domain, RW, contiguous(pfns[0]! * PAGE, PAGE), null, null, null, out())],
    ['UnmapLogicalRange', () => V2.UnmapLogicalRange(domain, logical.value!, 1)],
    ['MapIdentityRangeEx', () => V2.MapIdentityRangeEx(domain, RW, contiguous(0x300000, PAGE))],
    ['UnmapIdentityRangeEx', () => V2.UnmapIdentityRangeEx(domain, contiguous(0x200000, PAGE))],
  ];
  for (const [what, call] of stale) t.equal(call(), STATUS_INVALID_PARAMETER_1, `${what} with the deleted domain`);

  // maxDomains 2: the new domain reuses the deleted one's slot; the old handle stays dead.
  const reborn = domainOf(V2, DomainTypeTranslate, buddy(40));
  t.not(reborn, domain);
  for (const [what, call] of stale) t.equal(call(), STATUS_INVALID_PARAMETER_1, `${what} with the deleted domain after its slot was reused`);
  t.match(platform.describeDomain(reborn), { ranges: [], freeLogicalPages: 2 ** 28 - 1 }, 'the new domain starts empty');
  t.same(platform.inspectTranslation(reborn, logical.value!), { faultType: TranslationFault }, 'and inherits no translation');
  t.same(platform.inspectTranslation(reborn, 0x200000), { faultType: TranslationFault });
  t.equal(V2.DeleteDomain(reborn), STATUS_SUCCESS);
  t.equal(V2.DeleteDomain(keeper), STATUS_SUCCESS);
  t.equal(platform.pageTablesInUse, baseline, 'back to the baseline');
  for (const type of [DomainTypePassThrough, DomainTypeUnmanaged]) {
    t.equal(V2.DeleteDomain(domainOf(V2, type)), STATUS_SUCCESS, `a type ${type} domain is deleted too`);
  }
});

t.test('DeleteDomain with a logical address token outstanding is STATUS_RESOURCE_IN_USE', async (t) => {
  const platform = await platformFor(t, { workers: 0 });
  const V2 = v2Of(platform);
  for (const allocator of [buddy(40), null]) {
    const what = allocator === null ? 'explicit' : 'buddy';
    const domain = domainOf(V2, DomainTypeTranslate, allocator);
    const token = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN>();
    t.equal(V2.ReserveLogicalAddressRange(domain, 4 * PAGE, allocator === null ? 0x100000 : null, null, null, token), STATUS_SUCCESS, `${what}: reserve`);
    const base = token.value!.LogicalAddressBase;
    const check = watch(platform, domain, [base, base + PAGE]);
    t.equal(V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, `${what}: an unmapped token`);
    check(t, `${what}: unmapped token`);
    const [pfn] = platform.memory.allocatePages(1);
    const segment = out<IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT>();
    t.equal(V2.MapReservedLogicalRange(token.value!, PAGE, RW, contiguous(pfn! * PAGE, PAGE), segment), STATUS_SUCCESS);
    const mapped = watch(platform, domain, [base, base + PAGE]);
    t.equal(V2.DeleteDomain(domain), STATUS_RESOURCE_IN_USE, `${what}: a token with a mapped segment`);
    mapped(t, `${what}: mapped token`);
    t.same(
      platform.inspectTranslation(domain, base + PAGE + 2),
      { physicalAddress: pfn! * PAGE + 2, access: RW, leafBytes: PAGE },
      `${what}: the segment still translates`,
    );
    t.equal(V2.UnmapReservedLogicalRange(segment.value!), STATUS_SUCCESS);
    t.equal(V2.FreeReservedLogicalAddressRange(token.value!), STATUS_SUCCESS);
    t.equal(V2.DeleteDomain(domain), STATUS_SUCCESS, `${what}: every token freed`);
  }
});
