import t from 'tap';
import { rng } from '../helpers/fixture.js';
import {
  ADDRESS_SIZE_FAULT,
  AF,
  AP_TABLE0,
  AP1,
  AP2,
  ATTR_INDX,
  BIT63,
  CONTIGUOUS,
  GiB,
  GuestRam,
  MiB,
  NG,
  NORMAL_LEAF_ATTRS,
  NS_TABLE,
  PAGE,
  PBHA,
  PXN,
  PXN_TABLE,
  PageTableBuilder,
  READ_ONLY,
  READ_WRITE,
  SH_INNER,
  SOFTWARE,
  TRANSLATION_FAULT,
  UXN,
  UXN_TABLE,
  armStartLevel,
  blockDescriptor,
  entryBytes,
  hex,
  pageDescriptor,
  randomInt,
  tableDescriptor,
  walk,
  type Walk,
} from './arm64-walker-encoder.js';

/** Success shape for a leaf that lies entirely inside guest RAM. */
function hit(pa: number, leafPa: number, leafBytes: number, access = READ_WRITE): Walk {
  return { pfn: pa / PAGE, leafPfn: leafPa / PAGE, span: leafBytes / PAGE, access };
}
const miss: Walk = { fault: TRANSLATION_FAULT };

t.test('the test encoder follows the Arm descriptor layout (checked against hand-computed values)', async (t) => {
  t.equal(pageDescriptor(0x1234_5678_9000, { attrs: 0n }), 0x0000_1234_5678_9403n, 'page: OA[47:12] | AF | 0b11');
  t.equal(pageDescriptor(0x1234_5678_9000, { attrs: 0n, readOnly: true }), 0x0000_1234_5678_9483n, 'AP[2] is bit 7');
  t.equal(pageDescriptor(0x5000, { attrs: 0n, af: false }), 0x5003n, 'AF is bit 10');
  t.equal(pageDescriptor(0x5000), 0x0060_0000_0000_5f53n, 'UXN|PXN, nG, AF, SH=11, AP[1], AttrIndx=4, page');
  t.equal(blockDescriptor(1, 0x4000_0000, { attrs: 0n }), 0x4000_0401n, '1 GiB block: 0b01');
  t.equal(blockDescriptor(2, 0x8000_0020_0000, { attrs: 0n, readOnly: true }), 0x0000_8000_0020_0481n, '2 MiB block');
  t.equal(tableDescriptor(0x1000, { apTable1: true }), 0x4000_0000_0000_1003n, 'table with APTable[1] (bit 62)');
  t.throws(() => blockDescriptor(2, 0x1000), 'a misaligned block is refused by the encoder');
  const ram = new GuestRam(MiB);
  ram.write64(0x100, pageDescriptor(0x5000));
  t.same([...new Uint8Array(ram.buffer, 0x100, 8)], [0x53, 0x5f, 0, 0, 0, 0, 0x60, 0], 'stored little-endian');
  t.same([25, 30, 31, 39, 40, 48].map(armStartLevel), [2, 2, 1, 1, 0, 0], 'start levels from the 9-bit strides');
});

t.test('hand-written tables: one walk from each start level', async (t) => {
  const ram = new GuestRam(64 * MiB);
  // Input size 48, start level 0: VA[47:39]=257, [38:30]=2, [29:21]=1, [20:12]=3.
  ram.write64(0x1000 + 257 * 8, tableDescriptor(0x2000));
  ram.write64(0x2000 + 2 * 8, tableDescriptor(0x3000));
  ram.write64(0x3000 + 1 * 8, tableDescriptor(0x4000));
  ram.write64(0x4000 + 3 * 8, pageDescriptor(0x0123_4000));
  t.same(walk(ram, 0x1000, 48, 0x8080_8020_3123), hit(0x0123_4000, 0x0123_4000, PAGE), 'level 0 start');
  t.same(walk(ram, 0x1000, 48, 0x8080_8020_4123), miss, 'the next page is not mapped');
  // Input size 39, start level 1: VA[38:30]=300, [29:21]=5, [20:12]=7.
  ram.write64(0x11000 + 300 * 8, tableDescriptor(0x12000));
  ram.write64(0x12000 + 5 * 8, tableDescriptor(0x13000));
  ram.write64(0x13000 + 7 * 8, pageDescriptor(0x0200_0000, { readOnly: true }));
  t.same(walk(ram, 0x11000, 39, 0x4b_00a0_7fff), hit(0x0200_0000, 0x0200_0000, PAGE, READ_ONLY), 'level 1 start');
  // Input size 30, start level 2: VA[29:21]=511, [20:12]=511.
  ram.write64(0x21000 + 511 * 8, tableDescriptor(0x22000));
  ram.write64(0x22000 + 511 * 8, pageDescriptor(0x03ff_f000));
  t.same(walk(ram, 0x21000, 30, 0x3fff_f000), hit(0x03ff_f000, 0x03ff_f000, PAGE), 'level 2 start, last entry of both tables');
  // The same tables walked with a different start level must not translate the same way.
  t.same(walk(ram, 0x21000, 31, 0x3fff_f000), miss, 'input size 31 starts at level 1: entry 0 of the same root is empty');
});

t.test('every input size 25..48 translates pages at the bottom, a random place and the top of its range', async (t) => {
  const ram = new GuestRam(64 * MiB);
  const random = rng(25);
  for (let inputSize = 25; inputSize <= 48; inputSize++) {
    const b = new PageTableBuilder(ram, inputSize);
    const top = 2 ** inputSize - PAGE;
    const middle = (1 + randomInt(random, 2 ** (inputSize - 12) - 3)) * PAGE; // never the top page or the one below
    const pas = [0, 1, 2].map(() => 0x0100_0000 + randomInt(random, 0x2000) * PAGE);
    b.map(0, pas[0]!);
    b.map(middle, pas[1]!, { readOnly: true });
    b.map(top, pas[2]!);
    const at = `input size ${inputSize} (start level ${b.startLevel})`;
    t.same(b.walk(0x123), hit(pas[0]!, pas[0]!, PAGE), `${at}: page 0`);
    t.same(b.walk(middle + 0xfff), hit(pas[1]!, pas[1]!, PAGE, READ_ONLY), `${at}: ${hex(middle)}`);
    t.same(b.walk(top), hit(pas[2]!, pas[2]!, PAGE), `${at}: first byte of the top page`);
    t.same(b.walk(2 ** inputSize - 1), hit(pas[2]!, pas[2]!, PAGE), `${at}: last input address`);
    t.same(b.walk(top - PAGE), miss, `${at}: the page below the top is not mapped`);
  }
});

t.test('2 MiB blocks at level 2 under each start level', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const inputSize of [48, 39, 30, 25]) {
    const b = new PageTableBuilder(ram, inputSize);
    const va = 2 ** inputSize - 3 * 2 * MiB;
    b.map(va, 6 * MiB, { level: 2 });
    const at = `input size ${inputSize}`;
    t.same(b.walk(va), hit(6 * MiB, 6 * MiB, 2 * MiB), `${at}: first page`);
    t.same(b.walk(va + 17 * PAGE + 5), hit(6 * MiB + 17 * PAGE, 6 * MiB, 2 * MiB), `${at}: page 17`);
    t.same(b.walk(va + 2 * MiB - 1), hit(8 * MiB - PAGE, 6 * MiB, 2 * MiB), `${at}: last page`);
    t.same(b.walk(va + 2 * MiB), miss, `${at}: the next 2 MiB is not mapped`);
    t.same(b.walk(va - 1), miss, `${at}: nor the previous one`);
  }
  const last = new PageTableBuilder(ram, 48);
  last.map(0x4000_0000, 62 * MiB, { level: 2 });
  t.same(last.walk(0x4000_0000 + 2 * MiB - 1), hit(64 * MiB - PAGE, 62 * MiB, 2 * MiB), 'a block ending exactly at the end of RAM is whole');
});

t.test('1 GiB blocks at level 1, below a level-0 table and in the root table', async (t) => {
  const ram = new GuestRam(2 * GiB); // zero pages, committed lazily: only table pages are touched
  for (const inputSize of [48, 40, 39, 31]) {
    const b = new PageTableBuilder(ram, inputSize);
    const va = 2 ** inputSize - GiB;
    b.map(va, GiB, { level: 1 });
    const at = `input size ${inputSize} (start level ${b.startLevel})`;
    t.same(b.walk(va), hit(GiB, GiB, GiB), `${at}: first page`);
    t.same(b.walk(va + 0x1234_5678), hit(GiB + 0x1234_5000, GiB, GiB), `${at}: a page inside`);
    t.same(b.walk(va + GiB - 1), hit(2 * GiB - PAGE, GiB, GiB), `${at}: last page`);
    t.same(b.walk(va - PAGE), miss, `${at}: below the block is unmapped`);
  }
});

t.test('level-3 pages under each start level, neighbours unmapped', async (t) => {
  const ram = new GuestRam(64 * MiB);
  for (const inputSize of [48, 41, 39, 32, 30, 25]) {
    const b = new PageTableBuilder(ram, inputSize);
    const base = 2 ** (inputSize - 1) + 5 * 2 * MiB + 8 * PAGE;
    const pas = [0x0300_0000, 0x0010_0000, 0x03ff_f000];
    pas.forEach((pa, i) => {
      b.map(base + i * 2 * PAGE, pa);
    });
    const at = `input size ${inputSize}`;
    pas.forEach((pa, i) => {
      t.same(b.walk(base + i * 2 * PAGE + 0x7ff), hit(pa, pa, PAGE), `${at}: page ${i}`);
    });
    t.same(b.walk(base + PAGE), miss, `${at}: the gap between pages`);
    t.same(b.walk(base - PAGE), miss, `${at}: the page below`);
    t.same(b.walk(base + 2 * MiB), miss, `${at}: same index one level-2 entry up`);
  }
});

t.test('AP[2] (bit 7) makes a page or block read-only; AP[1] alone does not', async (t) => {
  const ram = new GuestRam(2 * GiB);
  const b = new PageTableBuilder(ram, 48);
  b.map(0x10_0000_0000, 0x5000, { readOnly: true });
  b.map(0x10_0000_1000, 0x6000, { attrs: ATTR_INDX(4) | AP1 });
  b.map(0x10_0000_2000, 0x7000, { attrs: ATTR_INDX(4) });
  b.map(0x10_0020_0000, 64 * MiB, { level: 2, readOnly: true });
  b.map(0x10_4000_0000, GiB, { level: 1, readOnly: true });
  b.map(0x10_8000_0000, 0, { level: 1, attrs: AP1 });
  t.same(b.walk(0x10_0000_0000), hit(0x5000, 0x5000, PAGE, READ_ONLY), 'page with AP[2]');
  t.same(b.walk(0x10_0000_1000), hit(0x6000, 0x6000, PAGE), 'page with AP=01 is read-write');
  t.same(b.walk(0x10_0000_2000), hit(0x7000, 0x7000, PAGE), 'page with AP=00 is read-write');
  t.same(b.walk(0x10_0030_0000), hit(65 * MiB, 64 * MiB, 2 * MiB, READ_ONLY), '2 MiB block with AP[2]');
  t.same(b.walk(0x10_7fff_ffff), hit(2 * GiB - PAGE, GiB, GiB, READ_ONLY), '1 GiB block with AP[2]');
  t.same(b.walk(0x10_8000_0000), hit(0, 0, GiB), '1 GiB block with AP[1] only');
});

t.test('APTable[1] (bit 62) at each table level makes everything below it read-only, and nothing else', async (t) => {
  const ram = new GuestRam(64 * MiB);
  const va = 0x8000_0000_0000;
  // Pages sharing the level-3, level-2, level-1 table with `va`, then one under another level-0 entry.
  const others = [va + PAGE, va + 2 * MiB, va + GiB, va + 512 * GiB];
  for (const level of [0, 1, 2]) {
    const b = new PageTableBuilder(ram, 48);
    b.map(va, 0x1000);
    others.forEach((o, i) => {
      b.map(o, 0x2000 + i * PAGE);
    });
    b.setApTable1(va, level);
    t.same(b.walk(va), hit(0x1000, 0x1000, PAGE, READ_ONLY), `APTable[1] at level ${level}: the page`);
    const expected = [READ_ONLY, level <= 1 ? READ_ONLY : READ_WRITE, level === 0 ? READ_ONLY : READ_WRITE, READ_WRITE];
    others.forEach((o, i) => {
      t.same(b.walk(o), hit(0x2000 + i * PAGE, 0x2000 + i * PAGE, PAGE, expected[i]), `level ${level}: ${hex(o)}`);
    });
  }
  const blocks = new PageTableBuilder(ram, 48);
  blocks.map(0, 4 * MiB, { level: 2, apTable1At: [0] });
  blocks.map(0x80_0000_0000 + 2 * MiB, 6 * MiB, { level: 2, apTable1At: [1] });
  blocks.map(0x80_4000_0000, 8 * MiB, { level: 2 });
  blocks.map(0x100_4000_0000, 0, { level: 1, apTable1At: [0] });
  t.same(blocks.walk(0x1000), hit(4 * MiB + PAGE, 4 * MiB, 2 * MiB, READ_ONLY), '2 MiB block under a level-0 APTable[1]');
  t.same(blocks.walk(0x80_0020_0000), hit(6 * MiB, 6 * MiB, 2 * MiB, READ_ONLY), '2 MiB block under a level-1 APTable[1]');
  t.same(blocks.walk(0x80_4000_0000), hit(8 * MiB, 8 * MiB, 2 * MiB), 'its neighbour under another level-1 entry');
  t.same(blocks.walk(0x100_4000_0000), { pfn: 0, leafPfn: 0, span: 1, access: READ_ONLY }, '1 GiB block under a level-0 APTable[1]');
  for (const inputSize of [39, 30]) {
    const b = new PageTableBuilder(ram, inputSize);
    b.map(0x3000, 0x3000, { apTable1At: [b.startLevel] });
    b.map(2 ** inputSize - PAGE, 0x4000);
    t.same(b.walk(0x3000), hit(0x3000, 0x3000, PAGE, READ_ONLY), `input size ${inputSize}: APTable[1] in the root table`);
    t.same(b.walk(2 ** inputSize - PAGE), hit(0x4000, 0x4000, PAGE), `input size ${inputSize}: another root entry`);
  }
});

t.test('attribute bits that do not affect translation or write permission are ignored', async (t) => {
  const ram = new GuestRam(64 * MiB);
  const b = new PageTableBuilder(ram, 48);
  const allUpper = CONTIGUOUS | PXN | UXN | SOFTWARE | PBHA | BIT63;
  const allLower = ATTR_INDX(7) | (1n << 5n) | SH_INNER | AP1 | NG;
  b.map(0x1000, 0x0200_0000, { attrs: 0n });
  b.map(0x2000, 0x0200_1000, { attrs: allUpper | allLower });
  b.map(0x20_0000, 0x0220_0000, { level: 2, attrs: allUpper | allLower });
  b.map(0x4000_0000, 0, { level: 1, attrs: 1n << 62n });
  t.same(b.walk(0x1000), hit(0x0200_0000, 0x0200_0000, PAGE), 'minimal page descriptor');
  t.same(b.walk(0x2000), hit(0x0200_1000, 0x0200_1000, PAGE), 'every other page attribute set (bit 62 is PBHA in a leaf)');
  t.same(b.walk(0x30_0000), hit(0x0230_0000, 0x0220_0000, 2 * MiB), 'every other block attribute set');
  t.same(b.walk(0x4000_0000), { pfn: 0, leafPfn: 0, span: 1, access: READ_WRITE }, '1 GiB block with bit 62 is not read-only');
  // Table descriptors: bits 11:2 are ignored (AP[2] and AF positions included), APTable[0] is about EL0 only.
  const tables = new PageTableBuilder(ram, 48);
  tables.map(0x7f_0000_0000, 0x0300_0000);
  for (const level of [0, 1, 2]) {
    const entry = tables.slot(0x7f_0000_0000, level);
    ram.write64(entry, tableDescriptor(tables.tableAt(entry), { attrs: AP2 | AF | 0xffcn | AP_TABLE0 | NS_TABLE | PXN_TABLE | UXN_TABLE }));
  }
  t.same(tables.walk(0x7f_0000_0000), hit(0x0300_0000, 0x0300_0000, PAGE), 'table descriptors with ignored and non-write attributes');
  t.equal(NORMAL_LEAF_ATTRS & AP2, 0n, 'the default leaf attributes do not include AP[2]');
});

const bigRamBytes = 4 * GiB + 4 * MiB;
function bigRam(): GuestRam | undefined {
  try {
    return new GuestRam(bigRamBytes); // zero pages committed lazily: only table pages are touched
  } catch {
    return undefined;
  }
}
const big = bigRam();

t.test(
  'output and table addresses with bits 47:32 set, in a guest larger than 4 GiB',
  { skip: big ? false : 'cannot allocate a 4 GiB SharedArrayBuffer here' },
  async (t) => {
    const ramBytes = bigRamBytes;
    const ram = big!;
    ram.nextTable = 4 * GiB + MiB; // every table descriptor carries bit 32 and table walks cross 4 GiB
    const b = new PageTableBuilder(ram, 48);
    b.map(0x1000, 4 * GiB + 0x5000);
    b.map(0x2000, ramBytes - PAGE);
    b.map(0x3000, 0xffff_f000);
    b.map(0x20_0000, 4 * GiB + 2 * MiB, { level: 2 });
    b.map(0x4000_0000, 3 * GiB, { level: 1 });
    b.map(0x8000_0000, 4 * GiB, { level: 1 });
    t.same(b.walk(0x1000), hit(4 * GiB + 0x5000, 4 * GiB + 0x5000, PAGE), 'page above 4 GiB');
    t.same(b.walk(0x2000), hit(ramBytes - PAGE, ramBytes - PAGE, PAGE), 'the last page of RAM');
    t.same(b.walk(0x3000), hit(0xffff_f000, 0xffff_f000, PAGE), 'page with OA bit 31 set');
    t.same(b.walk(0x3f_ffff), hit(4 * GiB + 4 * MiB - PAGE, 4 * GiB + 2 * MiB, 2 * MiB), '2 MiB block above 4 GiB');
    t.same(b.walk(0x7fff_ffff), hit(4 * GiB - PAGE, 3 * GiB, GiB), '1 GiB block with OA bits 31:30 set');
    const partial = { pfn: (4 * GiB + 0x1000) / PAGE, leafPfn: (4 * GiB + 0x1000) / PAGE, span: 1, access: READ_WRITE };
    t.same(b.walk(0x8000_1000), partial, '1 GiB block at 4 GiB, only 4 MiB of it in RAM: span 1');
    t.same(b.walk(0x803f_f000), b.expected(0x803f_f000), 'its last page in RAM');
    t.same(b.walk(0x8040_0000), { fault: ADDRESS_SIZE_FAULT }, 'its first page beyond RAM');
    ram.nextTable = 0xfff0_0000; // tables with address bits 31:20 set
    const low = new PageTableBuilder(ram, 48);
    low.map(0xffff_ffff_f000, 0x7000);
    t.same(low.walk(0xffff_ffff_ffff), hit(0x7000, 0x7000, PAGE), 'tables at 0xfff00000 and up');
  },
);

t.test('randomized sweeps against a reference model of the intended mappings', async (t) => {
  const configs = [
    { ramBytes: 64 * MiB, seeds: [1, 2, 3, 4, 5, 6, 7, 8] },
    { ramBytes: 64 * MiB + 3 * PAGE, seeds: [11, 12, 13, 14] },
    { ramBytes: 2 * GiB, seeds: [21, 22, 23, 24] },
  ];
  const outcomes = new Map<string, number>();
  for (const { ramBytes, seeds } of configs) {
    for (const seed of seeds) {
      const random = rng(seed);
      const ram = new GuestRam(ramBytes);
      const inputSize = 25 + randomInt(random, 24);
      const b = new PageTableBuilder(ram, inputSize);
      const levels = ([1, 2, 3] as const).filter((l) => l >= b.startLevel);
      for (let attempt = 0; attempt < 64; attempt++) {
        const level = levels[randomInt(random, levels.length)]!;
        const size = entryBytes(level);
        const near = b.mappings[randomInt(random, b.mappings.length + 1)];
        const slots = 2 ** inputSize / size;
        const va = near && random() < 0.6 ? Math.floor(near.va / size) * size + (randomInt(random, 9) - 4) * size : randomInt(random, slots) * size;
        if (va < 0 || va >= 2 ** inputSize) continue;
        const kind = random();
        const pa =
          kind < 0.55
            ? randomInt(random, Math.max(1, Math.floor(ramBytes / size))) * size
            : kind < 0.7
              ? Math.floor((ramBytes - 1) / size) * size
              : kind < 0.85
                ? (Math.ceil(ramBytes / size) + randomInt(random, 4)) * size
                : randomInt(random, 2 ** 48 / size) * size;
        const apTable1At = [0, 1, 2].filter((l) => l >= b.startLevel && l < level && random() < 0.1);
        try {
          b.map(va, pa, { level, af: random() < 0.85, readOnly: random() < 0.25, apTable1At });
        } catch {
          // overlaps an earlier mapping: pick another
        }
      }
      const samples: number[] = [];
      for (const m of b.mappings) {
        samples.push(m.va, m.va + randomInt(random, m.size), m.va + m.size - 1, m.va + m.size, m.va - 1);
        const inRam = ramBytes - m.pa;
        if (inRam > 0 && inRam < m.size) samples.push(m.va + inRam - 1, m.va + inRam);
      }
      for (let i = 0; i < 64; i++) samples.push(randomInt(random, 2 ** inputSize));
      for (let i = 0; i < 8; i++) samples.push(2 ** inputSize + randomInt(random, 2 ** inputSize));
      const mismatches: string[] = [];
      for (const va of samples.filter((v) => v >= 0)) {
        const actual = b.walk(va);
        const expected = b.expected(va);
        if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push(`${hex(va)}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
        const key = 'fault' in expected ? `fault ${expected.fault}` : `${expected.span === 1 ? 'page' : 'block'} access ${expected.access}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
      t.same(mismatches.slice(0, 5), [], `RAM ${hex(ramBytes)}, seed ${seed}, input size ${inputSize}: ${b.mappings.length} mappings, ${samples.length} walks`);
    }
  }
  const kinds = [...outcomes.keys()].sort();
  t.same(kinds, ['block access 1', 'block access 3', 'fault 1', 'fault 5', 'fault 6', 'page access 1', 'page access 3'], 'the sweeps reach every outcome');
});
