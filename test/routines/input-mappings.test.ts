import t from 'tap';
import {
  NT_SUCCESS,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INVALID_PARAMETER_1,
  STATUS_NOT_FOUND,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  type INPUT_MAPPING_ELEMENT,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
} from '../../machine/index.js';
import { out, platformFor, rng, v2Of } from '../helpers/fixture.js';
import { untyped } from '../helpers/untyped.js';

/** QueryInputMappings: a PCI function's input mapping ID is its requester ID plus the segment base; lengths in bytes. */

const SENTINEL = Object.freeze({ InputMappingId: 0xdeadbeef });

t.test('the ID is bus << 8 | device << 3 | function, one element of 4 bytes, for seeded random functions', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const random = rng(0x1d5);
  const seen = new Set<number>();
  const functions = [
    { bus: 0, device: 0, function: 0 },
    { bus: 255, device: 31, function: 7 },
  ];
  while (functions.length < 40) {
    const bdf = { bus: Math.floor(random() * 256), device: Math.floor(random() * 32), function: Math.floor(random() * 8) };
    const id = (bdf.bus << 8) | (bdf.device << 3) | bdf.function;
    if (!seen.has(id) && id !== 0 && id !== 0xffff) functions.push(bdf);
    seen.add(id);
  }
  const results: Array<[number, unknown, number | undefined]> = [];
  const expected: Array<[number, unknown, number | undefined]> = [];
  for (const bdf of functions) {
    const fn = platform.bus.addFunction(bdf);
    const buffer: INPUT_MAPPING_ELEMENT[] = [];
    const returned = out<number>();
    results.push([V2.QueryInputMappings(fn, buffer, 4, returned), buffer, returned.value]);
    expected.push([STATUS_SUCCESS, [{ InputMappingId: bdf.bus * 256 + bdf.device * 8 + bdf.function }], 4]);
  }
  t.strictSame(results, expected, 'every function reports exactly its requester ID, and ReturnLength = 4 bytes');
  t.equal(V2.QueryInputMappings(platform.bus.find(255, 31, 7)!, [], 4, null), STATUS_SUCCESS, 'ReturnLength may be null');
  t.equal(V2.QueryInputMappings(platform.bus.find(255, 31, 7)!, [], 4), STATUS_SUCCESS, 'or left out');
});

t.test('options.inputMappingBase is added to every requester ID', async (t) => {
  for (const base of [0x10000, 0x20_0000, 0xffff0000]) {
    const platform = await platformFor(t, { inputMappingBase: base });
    const V2 = v2Of(platform);
    const fn = platform.bus.addFunction({ bus: 3, device: 4, function: 5 });
    const buffer: INPUT_MAPPING_ELEMENT[] = [];
    t.equal(V2.QueryInputMappings(fn, buffer, 4, out()), STATUS_SUCCESS);
    t.strictSame(buffer, [{ InputMappingId: base + 0x325 }], `base 0x${base.toString(16)}`);
  }
});

t.test('a buffer shorter than 4 bytes: STATUS_BUFFER_TOO_SMALL, ReturnLength = 4, nothing written', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 1, device: 2, function: 3 });
  for (const length of [0, 1, 2, 3]) {
    const buffer = [SENTINEL, SENTINEL];
    const returned = out<number>();
    t.equal(V2.QueryInputMappings(fn, buffer, length, returned), STATUS_BUFFER_TOO_SMALL, `BufferLength ${length}`);
    t.equal(returned.value, 4, `BufferLength ${length}: ReturnLength is the bytes needed`);
    t.strictSame(buffer, [SENTINEL, SENTINEL], `BufferLength ${length}: the buffer is untouched`);
  }
  const withoutReturnLength = [SENTINEL];
  t.equal(V2.QueryInputMappings(fn, withoutReturnLength, 2, null), STATUS_BUFFER_TOO_SMALL, 'without ReturnLength too');
  t.strictSame(withoutReturnLength, [SENTINEL]);

  const large = [SENTINEL, SENTINEL, SENTINEL];
  const returned = out<number>();
  t.equal(V2.QueryInputMappings(fn, large, 12, returned), STATUS_SUCCESS, 'a larger buffer is fine');
  t.strictSame(large, [{ InputMappingId: 0x113 }, SENTINEL, SENTINEL], 'only the first element is written');
  t.equal(returned.value, 4, 'ReturnLength counts the bytes written, not the buffer');
});

t.test('Uint32Array buffers receive the IDs themselves', async (t) => {
  const platform = await platformFor(t, { inputMappingBase: 0x40000 });
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0x12, device: 0x1f, function: 6 });
  const buffer = new Uint32Array([7, 7, 7]);
  const returned = out<number>();
  t.equal(V2.QueryInputMappings(fn, buffer, 12, returned), STATUS_SUCCESS);
  t.strictSame([...buffer], [0x40000 + 0x12fe, 7, 7]);
  t.equal(returned.value, 4);

  const exact = new Uint32Array(1);
  t.equal(V2.QueryInputMappings(fn, exact, 4, null), STATUS_SUCCESS, 'a one-element array is exactly enough');
  t.equal(exact[0], 0x40000 + 0x12fe);

  const empty = new Uint32Array(0);
  const needed = out<number>();
  t.equal(V2.QueryInputMappings(fn, empty, 0, needed), STATUS_BUFFER_TOO_SMALL, 'an empty Uint32Array is too small');
  t.equal(needed.value, 4);

  const short = new Uint32Array([9, 9]);
  const shortNeeded = out<number>();
  t.equal(V2.QueryInputMappings(fn, short, 3, shortNeeded), STATUS_BUFFER_TOO_SMALL, 'BufferLength decides, not the array size');
  t.strictSame([...short], [9, 9]);
  t.equal(shortNeeded.value, 4);
});

t.test("arch 'x64' has no input mapping IDs: STATUS_NOT_SUPPORTED, nothing written", async (t) => {
  const platform = await platformFor(t, { arch: 'x64' });
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  for (const length of [4, 0]) {
    const buffer = [SENTINEL];
    const returned = out<number>();
    t.equal(V2.QueryInputMappings(fn, buffer, length, returned), STATUS_NOT_SUPPORTED, `BufferLength ${length}`);
    t.strictSame(buffer, [SENTINEL]);
    t.strictSame(returned, {}, 'ReturnLength untouched');
  }
});

t.test('a PDO that is not a PCI function of this platform is STATUS_INVALID_PARAMETER_1', async (t) => {
  const platform = await platformFor(t);
  const elsewhere = await platformFor(t);
  const V2 = v2Of(platform);
  const foreign = elsewhere.bus.addFunction({ bus: 0, device: 1, function: 0 });
  platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(platform.bus.find(0, 1, 0)!, null, device), STATUS_SUCCESS);
  for (const [what, pdo] of [
    ['a function of another platform', foreign],
    ['a copy of a real function', { ...platform.bus.find(0, 1, 0)! }],
    ['a DMA device handle', device.value],
    ['null', null],
    ['a requester ID', 8],
  ] as const) {
    const buffer = [SENTINEL];
    const returned = out<number>();
    t.equal(untyped(V2).QueryInputMappings(pdo, buffer, 4, returned), STATUS_INVALID_PARAMETER_1, what);
    t.strictSame(buffer, [SENTINEL], `${what}: buffer untouched`);
    t.strictSame(returned, {}, `${what}: ReturnLength untouched`);
  }
});

t.test('a function that is not behind the IOMMU has no input mapping ID to report', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 0, device: 2, function: 0, behindIommu: false });
  const buffer = [SENTINEL];
  const uints = new Uint32Array([5]);
  const returned = out<number>();
  const status = V2.QueryInputMappings(fn, buffer, 4, returned);
  t.notOk(NT_SUCCESS(status), `the query fails (0x${status.toString(16)})`);
  t.strictSame(buffer, [SENTINEL], 'nothing written');
  t.strictSame(returned, {}, 'ReturnLength untouched: this is no BUFFER_TOO_SMALL');
  t.notOk(NT_SUCCESS(V2.QueryInputMappings(fn, uints, 4, null)));
  t.equal(uints[0], 5, 'nothing written to a Uint32Array either');
  t.equal(V2.CreateDevice(fn, null, out()), STATUS_NOT_FOUND, 'consistent with CreateDevice (STATUS_NOT_FOUND)');
});

t.test('the query takes the PDO: no DMA device or domain is needed, and attaching changes nothing', async (t) => {
  const platform = await platformFor(t);
  const V2 = v2Of(platform);
  const fn = platform.bus.addFunction({ bus: 2, device: 0, function: 1 });
  const first: INPUT_MAPPING_ELEMENT[] = [];
  t.equal(V2.QueryInputMappings(fn, first, 4, null), STATUS_SUCCESS, 'before CreateDevice');
  const device = out<IOMMU_DMA_DEVICE>();
  t.equal(V2.CreateDevice(fn, null, device), STATUS_SUCCESS);
  const domain = out<IOMMU_DMA_DOMAIN>();
  t.equal(V2.CreateDomainEx(0, { AsUlonglong: 0 }, null, null, domain), STATUS_SUCCESS);
  t.equal(V2.AttachDeviceEx(domain.value!, device.value!), STATUS_SUCCESS);
  const second: INPUT_MAPPING_ELEMENT[] = [];
  t.equal(V2.QueryInputMappings(fn, second, 4, null), STATUS_SUCCESS, 'while attached');
  t.strictSame(second, first);
  t.strictSame(first, [{ InputMappingId: 0x201 }]);
});
