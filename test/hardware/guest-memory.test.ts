import t from 'tap';
import { GuestMemory } from '../../hardware/guest-memory.js';
import { PAGE, randomBytes, rng } from '../helpers/fixture.js';

const CANARY = 0x5a;

/** 16 pages of RAM filled with the canary byte. */
function memory(pages = 16): GuestMemory {
  const m = new GuestMemory(pages * PAGE);
  m.bytes.fill(CANARY);
  return m;
}

/** Offsets in [0, size) outside [from, to) that do not hold the canary. */
function damaged(m: GuestMemory, from = 0, to = 0): number[] {
  const bad: number[] = [];
  for (let i = 0; i < m.size; i++) if ((i < from || i >= to) && m.bytes[i] !== CANARY) bad.push(i);
  return bad;
}

t.test('constructor: size checks, and adopting an existing buffer', async (t) => {
  for (const bad of [PAGE * 3 + 1, PAGE, 0, -PAGE * 4, 2 ** 40 + PAGE]) {
    t.throws(() => new GuestMemory(bad), { name: 'RangeError', message: /memoryBytes must be a multiple of 4096 between 8192 and 2\^40/ }, `${bad} bytes`);
  }
  for (const bad of [PAGE * 2 + 0.5, Number.NaN, '65536', null]) {
    t.throws(() => new GuestMemory(bad as never), { name: 'TypeError', message: /memoryBytes must be an integer number of bytes/ }, `${String(bad)}`);
  }
  t.throws(() => new GuestMemory(new SharedArrayBuffer(PAGE * 2 + 8)), { name: 'RangeError', message: /guestMemory\.byteLength/ });
  const two = new GuestMemory(2 * PAGE);
  t.equal(two.pageCount, 2);
  t.equal(two.freePageCount, 1, 'page 0 is never free');
  const buffer = new SharedArrayBuffer(3 * PAGE);
  const adopted = new GuestMemory(buffer);
  t.equal(adopted.buffer, buffer);
  t.equal(adopted.size, 3 * PAGE);
  t.equal(adopted.pageCount, 3);
  adopted.write(PAGE + 1, [1, 2, 3]);
  t.same([...new Uint8Array(buffer, PAGE, 5)], [0, 1, 2, 3, 0], 'writes land in the adopted buffer');
  t.equal(new GuestMemory().size, 64 * 1024 * 1024, 'default 64 MiB');
});

t.test('allocatePages never hands out PFN 0 or a page twice', async (t) => {
  const m = memory(16);
  t.equal(m.freePageCount, 15);
  const first = m.allocatePages(5);
  const rest = m.allocatePages(10);
  const all = [...first, ...rest].sort((a, b) => a - b);
  t.same(
    all,
    Array.from({ length: 15 }, (_, i) => i + 1),
    'exactly pages 1..15',
  );
  t.equal(m.freePageCount, 0);
  t.equal(m.isAllocated(0), false, 'page 0 is reserved, not allocated');
  t.throws(() => m.allocatePages(1), { name: 'RangeError', message: /cannot allocate 1 guest page\(s\): 0 free/ });
  m.freePages([first[2]!, rest[7]!]);
  t.same(
    m.allocatePages(2).sort((a, b) => a - b),
    [first[2]!, rest[7]!].sort((a, b) => a - b),
    'freed pages come back',
  );
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => m.allocatePages(bad), RangeError, `count ${bad}`);
});

t.test('freePages: double free and foreign PFNs throw RangeError and change nothing', async (t) => {
  const m = memory(16);
  const pfns = m.allocatePages(6);
  const free = m.freePageCount;
  const unallocated = 15;
  t.equal(m.isAllocated(unallocated), false);
  const cases: Array<[string, number[]]> = [
    ['the same page twice in one call', [pfns[0]!, pfns[1]!, pfns[0]!]],
    ['PFN 0', [pfns[0]!, 0]],
    ['a PFN past the end', [pfns[0]!, 16]],
    ['a negative PFN', [pfns[0]!, -1]],
    ['a fractional PFN', [pfns[0]!, 2.5]],
    ['a page never allocated', [pfns[0]!, unallocated]],
  ];
  for (const [what, list] of cases) {
    t.throws(() => m.freePages(list), { name: 'RangeError', message: /is not allocated \(double free or foreign PFN\)/ }, what);
    t.equal(m.freePageCount, free, `${what}: freePageCount unchanged`);
    t.same(
      pfns.filter((p) => !m.isAllocated(p)),
      [],
      `${what}: every page still allocated`,
    );
  }
  m.freePages([pfns[0]!, pfns[1]!]);
  t.equal(m.freePageCount, free + 2);
  t.throws(() => m.freePages([pfns[2]!, pfns[0]!]), RangeError, 'a page already freed');
  t.equal(m.freePageCount, free + 2);
  t.equal(m.isAllocated(pfns[2]!), true, 'the valid page of the failed call is still allocated');
});

t.test('allocateContiguousPages: aligned, contiguous, skipping used pages', async (t) => {
  const m = memory(64);
  t.same(m.allocatePages(3), [1, 2, 3]);
  t.equal(m.allocateContiguousPages(4, 8), 8);
  t.equal(m.allocateContiguousPages(8, 8), 16, 'the next aligned start with 8 free pages');
  t.equal(m.allocateContiguousPages(4), 4, 'unaligned: the first free run of 4');
  t.equal(m.allocateContiguousPages(5), 24, 'pages 12..15 are only 4');
  t.equal(m.allocateContiguousPages(16, 16), 32);
  t.equal(m.allocateContiguousPages(2, 3), 12, 'alignment 3');
  for (const pfn of [4, 5, 6, 7, 8, 11, 12, 13, 16, 23, 24, 28, 32, 47]) t.equal(m.isAllocated(pfn), true, `page ${pfn} allocated`);
  for (const pfn of [14, 15, 29, 31, 48]) t.equal(m.isAllocated(pfn), false, `page ${pfn} free`);
  const free = m.freePageCount;
  t.equal(free, 64 - 1 - 3 - 4 - 8 - 4 - 5 - 16 - 2);
  t.throws(() => m.allocateContiguousPages(17), { name: 'RangeError', message: /cannot allocate 17 guest page\(s\)/ });
  t.throws(() => m.allocateContiguousPages(2, 64), RangeError, 'no aligned start below the end');
  t.throws(() => m.allocateContiguousPages(1, 0), { name: 'RangeError', message: /alignPages/ });
  t.throws(() => m.allocateContiguousPages(0), RangeError);
  t.equal(m.freePageCount, free, 'failed calls take nothing');
  const start = m.allocateContiguousPages(16, 16);
  t.equal(start, 48);
  t.equal(start % 16, 0);
});

t.test('read/write/fill stay inside guest memory and never wrap', async (t) => {
  const m = memory(4);
  const data = randomBytes(rng(11), 100);
  m.write(PAGE - 50, data);
  t.same(m.read(PAGE - 50, 100), data, 'across a page boundary');
  t.same(damaged(m, PAGE - 50, PAGE + 50), [], 'canaries around the write');
  m.write(m.size - 4, [1, 2, 3, 4]);
  t.same([...m.read(m.size - 6, 6)], [CANARY, CANARY, 1, 2, 3, 4], 'the last bytes');
  t.same(m.read(m.size, 0), new Uint8Array(0), 'an empty read at the end');
  const snapshot = m.bytes.slice();
  const outOfRange: Array<[string, () => unknown]> = [
    ['write one byte past the end', () => m.write(m.size - 4, [1, 2, 3, 4, 5])],
    ['write at size', () => m.write(m.size, [1])],
    ['write at 2^32 (would wrap in 32 bits)', () => m.write(2 ** 32, [1])],
    ['write at 2^32 + 8', () => m.write(2 ** 32 + 8, [9])],
    ['read past the end', () => m.read(m.size - 1, 2)],
    ['read at 2^53', () => m.read(2 ** 53, 1)],
    ['read at -1', () => m.read(-1, 1)],
    ['read of length -1', () => m.read(0, -1)],
    ['read at 1.5', () => m.read(1.5, 1)],
    ['fill past the end', () => m.fill(m.size - 10, 11, 0)],
    ['readU32 3 bytes from the end', () => m.readU32(m.size - 3)],
    ['writeU32 3 bytes from the end', () => m.writeU32(m.size - 3, 0xffffffff)],
    ['readU64 7 bytes from the end', () => m.readU64(m.size - 7)],
    ['writeU64 7 bytes from the end', () => m.writeU64(m.size - 7, 1)],
    ['writeU64 at 2^32', () => m.writeU64(2 ** 32, 1)],
  ];
  for (const [what, call] of outOfRange) t.throws(call, RangeError, what);
  t.throws(() => m.write(0, 'abc' as never), TypeError, 'a string is not bytes');
  t.throws(() => m.write(0, null as never), TypeError);
  t.same(m.bytes, snapshot, 'no failed access changed a byte');
});

t.test('readU32/readU64/writeU32/writeU64: little endian, exact, with canaries', async (t) => {
  const m = memory(4);
  m.writeU32(100, 0x89abcdef);
  t.same([...m.read(99, 6)], [CANARY, 0xef, 0xcd, 0xab, 0x89, CANARY]);
  t.equal(m.readU32(100), 0x89abcdef);
  m.writeU32(104, -1);
  t.equal(m.readU32(104), 0xffffffff, 'negative numbers are taken modulo 2^32');
  m.writeU64(200, 2 ** 53 - 1);
  t.same([...m.read(199, 10)], [CANARY, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, CANARY]);
  t.equal(m.readU64(200), 2 ** 53 - 1);
  m.writeU64(m.size - 8, 0x1234_5678_9abc);
  t.equal(m.readU64(m.size - 8), 0x1234_5678_9abc, 'the last 8 bytes');
  t.same([...m.read(m.size - 8, 8)], [0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0]);
  m.writeU64(300, 0);
  t.equal(m.readU64(300), 0);
  t.same(
    damaged(m, 100, 108).filter((i) => (i < 200 || i >= 208) && i < m.size - 8 && (i < 300 || i >= 308)),
    [],
    'nothing else written',
  );
  const snapshot = m.bytes.slice();
  for (const bad of [-1, 2 ** 53, 1.5, Number.NaN])
    t.throws(() => m.writeU64(400, bad), { name: 'RangeError', message: /value must be a non-negative safe integer/ }, `value ${bad}`);
  t.same(m.bytes, snapshot);
  m.bytes.set([1, 0, 0, 0, 0, 0, 0x20, 0], 500);
  t.equal(m.readU64(500), 2 ** 53, '2^53 + 1 reads as 2^53: values above 2^53 lose precision as documented');
});

t.test('mdl(): the byte span must cover exactly the pages given', async (t) => {
  const m = memory(16);
  const pfns = m.allocatePages(3);
  t.same(m.mdl(pfns), { ByteCount: 3 * PAGE, ByteOffset: 0, Pfns: pfns }, 'defaults: whole pages');
  t.same(
    m.mdl(pfns, 2 * PAGE + 1, PAGE - 1),
    { ByteCount: 2 * PAGE + 1, ByteOffset: PAGE - 1, Pfns: pfns },
    '4095 + 8193 bytes end exactly where the third page ends',
  );
  t.throws(() => m.mdl(pfns, 2 * PAGE + 2, PAGE - 1), RangeError, 'one byte more spills into a fourth page');
  t.same(m.mdl(pfns.slice(0, 1), 1, 4095), { ByteCount: 1, ByteOffset: 4095, Pfns: pfns.slice(0, 1) });
  const source = [...pfns];
  const mdl = m.mdl(source, 2 * PAGE + 1);
  source[0] = 9;
  t.equal(mdl.Pfns[0], pfns[0], 'the MDL holds its own copy');
  t.ok(Object.isFrozen(mdl) && Object.isFrozen(mdl.Pfns), 'frozen');
  const bad: Array<[string, () => unknown, RegExp]> = [
    ['byteCount spanning fewer pages', () => m.mdl(pfns, 2 * PAGE), /spanning exactly 3 page\(s\)/],
    ['byteCount spanning more pages', () => m.mdl(pfns, 3 * PAGE, 1), /spanning exactly 3 page\(s\) from byteOffset 1/],
    ['byteCount 0', () => m.mdl(pfns.slice(0, 1), 0), /byteCount must be a positive integer/],
    ['byteOffset 4096', () => m.mdl(pfns, 2 * PAGE, PAGE), /byteOffset must be an integer in 0\.\.4095/],
    ['byteOffset -1', () => m.mdl(pfns, 3 * PAGE, -1), /byteOffset/],
    ['byteOffset 0.5', () => m.mdl(pfns, 3 * PAGE, 0.5), /byteOffset/],
    ['a PFN past the end of memory', () => m.mdl([pfns[0]!, 16], 2 * PAGE), /pfns\[\] must be a page frame number below 16/],
    ['a negative PFN', () => m.mdl([-1], PAGE), /pfns\[\]/],
  ];
  for (const [what, call, message] of bad) t.throws(call, { name: 'RangeError', message }, what);
  t.throws(() => m.mdl([]), { name: 'TypeError', message: /pfns must be a non-empty array/ });
  t.throws(() => m.mdl('1' as never), TypeError);
});
