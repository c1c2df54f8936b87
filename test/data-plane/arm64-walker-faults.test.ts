import t from 'tap';
import { AccessFlagFault, AddressSizeFault, TranslationFault } from '../../base/enums.js';
import { rng } from '../helpers/fixture.js';
import {
  ACCESS_FLAG_FAULT,
  ADDRESS_SIZE_FAULT,
  AF,
  GiB,
  GuestRam,
  MiB,
  PAGE,
  PageTableBuilder,
  READ_ONLY,
  READ_WRITE,
  TRANSLATION_FAULT,
  TYPE_BLOCK,
  VALID,
  armStartLevel,
  blockDescriptor,
  entryBytes,
  hex,
  indexAt,
  leafDescriptor,
  pageDescriptor,
  randomInt,
  tableDescriptor,
  walk,
  type Walk,
} from './arm64-walker-encoder.js';

const translation: Walk = { fault: TRANSLATION_FAULT };
const addressSize: Walk = { fault: ADDRESS_SIZE_FAULT };
const accessFlag: Walk = { fault: ACCESS_FLAG_FAULT };
const HIGH_BITS = Array.from({ length: 16 }, (_, i) => 32 + i);

/** A 48-bit space with a page at `va` (tables at levels 0-2 on its path) and the descriptor addresses on the path. */
function onePage(ram: GuestRam, va = 0x8000_4020_3000, pa = 0x0123_4000) {
  const b = new PageTableBuilder(ram, 48);
  b.map(va, pa);
  return { b, va, pa, entries: [0, 1, 2, 3].map((level) => b.slot(va, level)) };
}

t.test('fault types carry the values of FAULT_INFORMATION_ARM64_TYPE', async (t) => {
  t.equal(TranslationFault, 6);
  t.equal(AddressSizeFault, 1);
  t.equal(AccessFlagFault, 5);
  t.same([TRANSLATION_FAULT, ADDRESS_SIZE_FAULT, ACCESS_FLAG_FAULT], [6, 1, 5], 'the test constants agree');
});

t.test('an invalid descriptor (bit 0 clear) at each level is a TranslationFault, whatever its other bits', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const level of [0, 1, 2, 3]) {
    const original = onePage(ram);
    t.same(original.b.walk(original.va), { pfn: original.pa / PAGE, leafPfn: original.pa / PAGE, span: 1, access: READ_WRITE }, `level ${level}: valid first`);
    for (const value of [0n, 0b10n, ram.read64(original.entries[level]!) & ~VALID, 0xffff_ffff_ffff_fffen]) {
      const { b, va, entries } = onePage(ram);
      ram.write64(entries[level]!, value);
      t.same(b.walk(va), translation, `level ${level}: descriptor 0x${value.toString(16)}`);
    }
  }
  for (const inputSize of [39, 30]) {
    const b = new PageTableBuilder(ram, inputSize);
    b.map(0x5000, 0x5000);
    ram.write64(b.slot(0x5000, b.startLevel), 0b10n);
    t.same(b.walk(0x5000), translation, `input size ${inputSize}: invalid root entry`);
    t.same(b.walk(2 ** inputSize - 1), translation, `input size ${inputSize}: empty root entry`);
  }
});

t.test('block type 0b01 is reserved at level 0 and level 3: TranslationFault', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const oa of [0, 512 * GiB]) {
    for (const af of [true, false]) {
      const { b, va, entries } = onePage(ram);
      ram.write64(entries[0]!, BigInt(oa) | (af ? AF : 0n) | TYPE_BLOCK);
      t.same(b.walk(va), translation, `level 0 "block" at ${hex(oa)}, AF ${af}`);
    }
  }
  for (const [pa, af] of [
    [0x5000, true],
    [0x5000, false],
    [128 * MiB, false],
    [2 ** 40, true],
  ] as const) {
    const { b, va, entries } = onePage(ram);
    ram.write64(entries[3]!, pageDescriptor(pa, { af }) & ~0b10n);
    t.same(b.walk(va), translation, `level 3 0b01 with OA ${hex(pa)}, AF ${af}`);
  }
});

t.test('input addresses at and beyond 2^InputSize are TranslationFaults, even where the index would wrap onto a valid entry', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (let inputSize = 25; inputSize <= 48; inputSize++) {
    const b = new PageTableBuilder(ram, inputSize);
    const start = armStartLevel(inputSize);
    b.map(0, 0x0200_0000);
    b.map(2 ** inputSize - PAGE, 0x0300_0000);
    // A decoy: the root entry that 2^InputSize would select if its high bit were dropped or not checked.
    const decoy = Math.floor(2 ** inputSize / entryBytes(start)) % 512;
    if (decoy !== 0) ram.write64(b.root + decoy * 8, ram.read64(b.root));
    const at = `input size ${inputSize}`;
    t.same(b.walk(2 ** inputSize - 1), b.expected(2 ** inputSize - 1), `${at}: the last address translates`);
    t.equal((b.walk(2 ** inputSize - 1) as { pfn: number }).pfn, 0x0300_0000 / PAGE, `${at}: to the top page`);
    for (const beyond of [2 ** inputSize, 2 ** inputSize + 0x123, 2 ** (inputSize + 1) - 1, 2 ** 48, 2 ** 52]) {
      if (beyond < 2 ** inputSize) continue;
      t.same(b.walk(beyond), translation, `${at}: ${hex(beyond)}`);
    }
  }
  const blocks = new PageTableBuilder(ram, 31);
  blocks.map(GiB, 0, { level: 1 });
  ram.write64(blocks.root + 2 * 8, ram.read64(blocks.root + 8));
  t.same(
    blocks.walk(GiB + 64 * MiB - 1),
    { pfn: (64 * MiB) / PAGE - 1, leafPfn: (64 * MiB) / PAGE - 1, span: 1, access: READ_WRITE },
    'input size 31: a root-level 1 GiB block (last page in RAM)',
  );
  t.same(blocks.walk(2 * GiB - 1), addressSize, 'input size 31: the last input address (block page beyond RAM)');
  t.same(blocks.walk(2 * GiB), translation, 'input size 31: just past it');
});

t.test('an output address beyond guest RAM is an AddressSizeFault (page and block, high bits included)', async (t) => {
  const ram = new GuestRam(64 * MiB);
  const b = new PageTableBuilder(ram, 48);
  const leaf = (level: 1 | 2 | 3, va: number, pa: number) => {
    b.map(va, pa, { level });
    return b.walk(va + entryBytes(level) - PAGE);
  };
  t.same(leaf(3, 0x1000, 64 * MiB - PAGE), { pfn: (64 * MiB) / PAGE - 1, leafPfn: (64 * MiB) / PAGE - 1, span: 1, access: READ_WRITE }, 'the last page of RAM');
  t.same(leaf(3, 0x2000, 64 * MiB), addressSize, 'page at the end of RAM');
  t.same(leaf(3, 0x3000, 2 ** 47 + 0x5000), addressSize, 'page with OA bit 47');
  t.same(leaf(2, 0x20_0000, 64 * MiB), addressSize, '2 MiB block at the end of RAM');
  t.same(b.walk(0x20_0000), addressSize, '... its first page too');
  t.same(leaf(1, GiB, GiB), addressSize, '1 GiB block at 1 GiB');
  t.same(b.walk(GiB), addressSize, '... its first page too');
  for (const bit of HIGH_BITS) {
    const va = 2 ** 40 + bit * 2 * GiB;
    t.same(leaf(3, va, 2 ** bit + 0x5000), addressSize, `page at 2^${bit} + 0x5000 (not 0x5000)`);
    t.same(leaf(2, va + GiB - 2 * MiB, 2 ** bit + 2 * MiB), addressSize, `2 MiB block at 2^${bit} + 2 MiB`);
    t.same(leaf(1, va + GiB, 2 ** bit), addressSize, `1 GiB block at 2^${bit}`);
  }
});

t.test('a table address beyond guest RAM is an AddressSizeFault', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const level of [0, 1, 2]) {
    for (const pointer of ['end' as const, ...HIGH_BITS]) {
      const { b, va, entries } = onePage(ram);
      const next = b.tableAt(entries[level]!);
      const beyond = pointer === 'end' ? 64 * MiB : 2 ** pointer + next;
      ram.write64(entries[level]!, tableDescriptor(beyond));
      t.same(b.walk(va), addressSize, `level ${level} table descriptor -> ${hex(beyond)}`);
    }
  }
  for (const inputSize of [39, 30]) {
    const b = new PageTableBuilder(ram, inputSize);
    b.map(0x5000, 0x5000);
    const entry = b.slot(0x5000, b.startLevel);
    ram.write64(entry, tableDescriptor(2 ** 33 + b.tableAt(entry)));
    t.same(b.walk(0x5000), addressSize, `input size ${inputSize}: root table descriptor beyond RAM`);
  }
  t.same(walk(ram, 64 * MiB, 48, 0x1000), addressSize, 'a TTBR0 beyond RAM');
});

t.test('a block only partly inside guest RAM: pages inside translate with span 1, pages outside fault', async (t) => {
  const ram = new GuestRam(64 * MiB + 3 * PAGE);
  const b = new PageTableBuilder(ram, 48);
  b.map(0x20_0000, 64 * MiB, { level: 2, readOnly: true });
  b.map(0x40_0000, 62 * MiB, { level: 2 });
  b.map(GiB, 0, { level: 1 });
  for (const page of [0, 1, 2]) {
    const pfn = (64 * MiB) / PAGE + page;
    t.same(b.walk(0x20_0000 + page * PAGE + 9), { pfn, leafPfn: pfn, span: 1, access: READ_ONLY }, `2 MiB block, page ${page} (in RAM)`);
  }
  t.same(b.walk(0x20_3000), addressSize, '2 MiB block, page 3 (beyond RAM)');
  t.same(b.walk(0x3f_ffff), addressSize, '2 MiB block, last page');
  t.same(
    b.walk(0x5f_f000),
    { pfn: (64 * MiB) / PAGE - 1, leafPfn: (62 * MiB) / PAGE, span: 512, access: READ_WRITE },
    'a 2 MiB block wholly inside stays whole',
  );
  for (const offset of [0, 0x1234_5678 % (64 * MiB), 64 * MiB + 2 * PAGE]) {
    const pfn = Math.floor(offset / PAGE);
    t.same(b.walk(GiB + offset), { pfn, leafPfn: pfn, span: 1, access: READ_WRITE }, `1 GiB block at 0, offset ${hex(offset)}`);
  }
  t.same(b.walk(GiB + 64 * MiB + 3 * PAGE), addressSize, '1 GiB block, first page beyond RAM');
  t.same(b.walk(2 * GiB - 1), addressSize, '1 GiB block, last page');
});

t.test('AF (bit 10) clear is an AccessFlagFault at each leaf kind, read-only or not', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const inputSize of [48, 39, 30]) {
    const b = new PageTableBuilder(ram, inputSize);
    const levels = ([1, 2, 3] as const).filter((level) => level >= b.startLevel);
    levels.forEach((level) => {
      // Separate regions per leaf kind: 0, 4 GiB, 8 GiB (or 0, 64 MiB when the space is only 1 GiB).
      const va = inputSize > 30 ? (level - 1) * 4 * GiB : (level - 2) * 64 * MiB;
      const pa = level === 1 ? 0 : 4 * MiB;
      b.map(va, pa, { level, af: false });
      b.map(va + entryBytes(level), pa, { level, af: false, readOnly: true, apTable1At: level === 3 ? [2] : [] });
      b.map(va + 2 * entryBytes(level), pa, { level });
      const at = `input size ${inputSize}, level ${level} ${level === 3 ? 'page' : 'block'}`;
      t.same(b.walk(va), accessFlag, `${at}: AF clear`);
      t.same(b.walk(va + entryBytes(level) + PAGE - 1), accessFlag, `${at}: AF clear, read-only`);
      t.same(b.walk(va + 2 * entryBytes(level)), b.expected(va + 2 * entryBytes(level)), `${at}: AF set translates`);
      t.notOk('fault' in b.walk(va + 2 * entryBytes(level)), `${at}: AF set is no fault`);
    });
  }
});

t.test('fault priority: translation, then address size, then access flag', async (t) => {
  const ram = new GuestRam(64 * MiB + 3 * PAGE);
  const beyond = { af: false, readOnly: true };
  for (const level of [1, 2, 3] as const) {
    const b = new PageTableBuilder(ram, 48);
    const va = 2 ** 47;
    b.map(va, 0, { level });
    const entry = b.slot(va, level);
    ram.write64(entry, leafDescriptor(level, 4 * GiB, beyond) & ~VALID);
    t.same(b.walk(va), translation, `level ${level}: invalid, OA beyond RAM, AF clear -> translation`);
    ram.write64(entry, leafDescriptor(level, 4 * GiB, beyond));
    t.same(b.walk(va), addressSize, `level ${level}: OA beyond RAM and AF clear -> address size`);
    ram.write64(entry, leafDescriptor(level, level === 1 ? 0 : 64 * MiB, { af: false }));
    t.same(b.walk(va), accessFlag, `level ${level}: first page in RAM, AF clear -> access flag`);
    t.same(b.walk(va + entryBytes(level) - PAGE), level === 3 ? accessFlag : addressSize, `level ${level}: last page`);
  }
  const { b, va, entries } = onePage(ram);
  ram.write64(entries[3]!, pageDescriptor(2 ** 44, { af: false }) & ~0b10n);
  t.same(b.walk(va), translation, 'reserved level-3 type, OA beyond RAM, AF clear -> translation');
  ram.write64(entries[0]!, BigInt(2 ** 45) | TYPE_BLOCK);
  t.same(b.walk(va), translation, 'reserved level-0 type with an OA beyond RAM -> translation');
  const decoy = new PageTableBuilder(ram, 40);
  decoy.map(0, 4 * GiB, { level: 1, af: false });
  ram.write64(decoy.root + 2 * 8, ram.read64(decoy.root));
  t.same(decoy.walk(2 ** 40), translation, 'input beyond range over a decoy with OA beyond RAM -> translation');
  const table = new PageTableBuilder(ram, 40);
  table.map(0, 0x5000);
  ram.write64(table.root + 2 * 8, tableDescriptor(4 * GiB));
  t.same(table.walk(2 ** 40), translation, 'input beyond range over a decoy table beyond RAM -> translation');
});

t.test('randomized corruption of walk paths against a priority model', async (t) => {
  type Corruption = 'invalid' | 'tableBeyond' | 'level0Block' | 'reserved3' | 'oaBeyond' | 'afClear' | 'oaBeyondAfClear';
  const faultOf: Record<Corruption, number> = {
    invalid: TRANSLATION_FAULT,
    tableBeyond: ADDRESS_SIZE_FAULT,
    level0Block: TRANSLATION_FAULT,
    reserved3: TRANSLATION_FAULT,
    oaBeyond: ADDRESS_SIZE_FAULT,
    afClear: ACCESS_FLAG_FAULT,
    oaBeyondAfClear: ADDRESS_SIZE_FAULT,
  };
  const seen = new Map<number, number>();
  const mismatches: string[] = [];
  const ram = new GuestRam(64 * MiB);
  const random = rng(0xa64);
  const trials = 300;
  for (let trial = 0; trial < trials; trial++) {
    ram.nextTable = 0x10000;
    ram.ram32.fill(0, 0x10000 / 4, 0x40000 / 4);
    const inputSize = 25 + randomInt(random, 24);
    const b = new PageTableBuilder(ram, inputSize);
    const levels = ([1, 2, 3] as const).filter((l) => l >= b.startLevel);
    const level = levels[randomInt(random, levels.length)]!;
    const size = entryBytes(level);
    const va = randomInt(random, 2 ** inputSize / size) * size;
    const pa = level === 1 ? 0 : randomInt(random, (32 * MiB) / size) * size;
    const readOnly = random() < 0.3;
    b.map(va, pa, { level, readOnly });
    // Corrupt up to two descriptors on the path; the walk meets the shallowest first.
    const corrupted: { level: number; kind: Corruption }[] = [];
    for (let l = b.startLevel; l <= level; l++) {
      if (random() >= 0.3) continue;
      const isLeaf = l === level;
      const options: Corruption[] = isLeaf
        ? ['invalid', 'oaBeyond', 'afClear', 'oaBeyondAfClear', ...(level === 3 ? (['reserved3'] as const) : [])]
        : ['invalid', 'tableBeyond', ...(l === 0 ? (['level0Block'] as const) : [])];
      const kind = options[randomInt(random, options.length)]!;
      const entry = b.slot(va, l);
      const value =
        kind === 'invalid'
          ? ram.read64(entry) & ~VALID
          : kind === 'tableBeyond'
            ? tableDescriptor(2 ** (26 + randomInt(random, 22)) + b.tableAt(entry))
            : kind === 'level0Block'
              ? AF | TYPE_BLOCK
              : kind === 'reserved3'
                ? pageDescriptor(pa, { readOnly }) & ~0b10n
                : leafDescriptor(level, kind === 'afClear' ? pa : pa + 2 ** (32 + randomInt(random, 16)), { af: kind === 'oaBeyond', readOnly });
      ram.write64(entry, value);
      corrupted.push({ level: l, kind });
      if (corrupted.length === 2) break;
    }
    const beyondRange = random() < 0.1;
    // Stay inside RAM for the leaf (a 1 GiB block maps PA 0 of a 64 MiB guest), so each kind means one fault.
    const address = (beyondRange ? 2 ** inputSize : va) + randomInt(random, Math.min(size, 64 * MiB));
    const expected: Walk = beyondRange ? translation : corrupted.length > 0 ? { fault: faultOf[corrupted[0]!.kind] } : b.expected(address);
    const actual = b.walk(address);
    const key = 'fault' in expected ? expected.fault : -1;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      mismatches.push(`input ${inputSize} ${hex(address)} ${JSON.stringify(corrupted)}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
    }
  }
  t.same(mismatches.slice(0, 5), [], `${trials} corrupted walks agree with the model`);
  t.same([...seen.keys()].sort(), [-1, 1, 5, 6], 'every outcome occurs');
  t.equal(indexAt(2 ** 47, 0), 256, 'sanity: VA bit 47 is level-0 index 256');
});

t.test('block descriptors are encoded per level (sanity of the encoder used above)', async (t) => {
  t.equal(blockDescriptor(1, GiB, { attrs: 0n, af: false }), 0x4000_0001n);
  t.throws(() => blockDescriptor(1, 2 * MiB));
});
