import t from 'tap';
import { type Extent, ExtentKind, LogicalSpace } from '../../iommu/control/logical-space.js';
import { rng } from '../helpers/fixture.js';

const ownerA = { name: 'A' };
const ownerB = { name: 'B' };
const token = { name: 'token' };

/** [first, pages, kind, owner] of every extent, in order. */
function shape(space: LogicalSpace): Array<[number, number, number, unknown]> {
  return space.extents().map((e) => [e.first, e.pages, e.kind, e.owner]);
}

function sample(): LogicalSpace {
  const space = new LogicalSpace();
  // Inserted out of order on purpose: the space keeps them sorted.
  space.insert(100, 50, ExtentKind.Logical, ownerA);
  space.insert(10, 10, ExtentKind.Identity, null);
  space.insert(150, 20, ExtentKind.Logical, ownerB);
  space.insert(300, 8, ExtentKind.Token, token);
  space.insert(20, 5, ExtentKind.Hole, null);
  return space;
}

t.test('extents stay sorted; overlapping and at find the right one', async (t) => {
  const space = sample();
  t.equal(space.size, 5);
  t.same(
    shape(space).map(([first]) => first),
    [10, 20, 100, 150, 300],
  );
  t.equal(space.overlapping(0, 10), undefined, 'ends right before the first extent');
  t.equal(space.overlapping(0, 11)?.first, 10);
  t.equal(space.overlapping(19, 1)?.first, 10, 'last page of an extent');
  t.equal(space.overlapping(20, 1)?.first, 20, 'the adjacent extent, not the previous one');
  t.equal(space.overlapping(25, 75), undefined, 'the gap [25, 100)');
  t.equal(space.overlapping(25, 76)?.first, 100);
  t.equal(space.overlapping(60, 1000)?.first, 100, 'the first of several overlapped extents');
  t.equal(space.overlapping(170, 130), undefined, 'the gap [170, 300)');
  t.equal(space.overlapping(307, 1)?.owner, token);
  t.equal(space.overlapping(308, 2 ** 40), undefined, 'past the last extent');
  t.equal(space.at(149)?.owner, ownerA);
  t.equal(space.at(150)?.owner, ownerB);
  t.equal(space.at(170), undefined);
  t.equal(space.at(9), undefined);
});

t.test('covered needs every page in extents of the kind, without gaps', async (t) => {
  const space = sample();
  t.equal(space.covered(100, 70, ExtentKind.Logical), true, 'two adjacent logical extents');
  t.equal(space.covered(120, 10, ExtentKind.Logical), true);
  t.equal(space.covered(100, 71, ExtentKind.Logical), false, 'one page past the end');
  t.equal(space.covered(99, 2, ExtentKind.Logical), false, 'one page before the start');
  t.equal(space.covered(100, 10, ExtentKind.Identity), false, 'wrong kind');
  t.equal(space.covered(10, 15, ExtentKind.Identity), false, 'identity then hole');
  t.equal(space.covered(10, 10, ExtentKind.Identity), true);
  t.equal(space.covered(20, 5, ExtentKind.Hole), true);
  t.equal(space.covered(300, 8, ExtentKind.Token), true);
  t.equal(space.covered(200, 1, ExtentKind.Logical), false, 'nothing there');
  space.insert(171, 10, ExtentKind.Logical, ownerA);
  t.equal(space.covered(160, 20, ExtentKind.Logical), false, 'a one-page gap at 170');
});

t.test('removing the middle of an extent leaves two extents with the same owner', async (t) => {
  const space = sample();
  const calls: Array<[number, number, unknown]> = [];
  space.remove(110, 20, (first, pages, owner) => calls.push([first, pages, owner]));
  t.same(calls, [[110, 20, ownerA]]);
  t.same(shape(space), [
    [10, 10, ExtentKind.Identity, null],
    [20, 5, ExtentKind.Hole, null],
    [100, 10, ExtentKind.Logical, ownerA],
    [130, 20, ExtentKind.Logical, ownerA],
    [150, 20, ExtentKind.Logical, ownerB],
    [300, 8, ExtentKind.Token, token],
  ]);
  t.equal(space.at(109)?.first, 100);
  t.equal(space.at(110), undefined);
  t.equal(space.at(129), undefined);
  t.equal(space.at(130)?.first, 130);
  t.equal(space.covered(100, 10, ExtentKind.Logical), true);
  t.equal(space.covered(100, 11, ExtentKind.Logical), false);
});

t.test('a removal across extents trims the edges, drops what it covers, and reports each piece with its owner', async (t) => {
  const space = sample();
  space.insert(170, 30, ExtentKind.Logical, ownerA);
  const calls: Array<[number, number, unknown]> = [];
  space.remove(140, 50, (first, pages, owner) => calls.push([first, pages, owner]));
  t.same(calls, [
    [140, 10, ownerA],
    [150, 20, ownerB],
    [170, 20, ownerA],
  ]);
  t.same(shape(space), [
    [10, 10, ExtentKind.Identity, null],
    [20, 5, ExtentKind.Hole, null],
    [100, 40, ExtentKind.Logical, ownerA],
    [190, 10, ExtentKind.Logical, ownerA],
    [300, 8, ExtentKind.Token, token],
  ]);
  const front: Array<[number, number, unknown]> = [];
  space.remove(100, 5, (first, pages, owner) => front.push([first, pages, owner]));
  t.same(front, [[100, 5, ownerA]], 'front trim');
  const whole: Array<[number, number, unknown]> = [];
  space.remove(300, 8, (first, pages, owner) => whole.push([first, pages, owner]));
  t.same(whole, [[300, 8, token]], 'whole extent');
  t.same(shape(space), [
    [10, 10, ExtentKind.Identity, null],
    [20, 5, ExtentKind.Hole, null],
    [105, 35, ExtentKind.Logical, ownerA],
    [190, 10, ExtentKind.Logical, ownerA],
  ]);
});

t.test('removeWhere drops exactly the matching extents', async (t) => {
  const space = sample();
  space.removeWhere((e: Extent) => e.owner === token || e.kind === ExtentKind.Hole);
  t.same(
    shape(space).map(([first]) => first),
    [10, 100, 150],
  );
  t.equal(space.at(300), undefined);
  t.equal(space.at(20), undefined);
  t.equal(space.at(10)?.kind, ExtentKind.Identity);
});

t.test('random inserts and removals agree with a page-by-page model', async (t) => {
  const random = rng(0x5ace);
  const pages = 4096;
  const model: Array<unknown> = new Array(pages).fill(undefined);
  const owners = Array.from({ length: 8 }, (_, i) => ({ i }));
  const space = new LogicalSpace();
  let mismatches = 0;
  for (let step = 0; step < 600; step++) {
    const first = Math.floor(random() * (pages - 64));
    const count = 1 + Math.floor(random() * 64);
    const overlap = space.overlapping(first, count);
    const modelOverlap = model.slice(first, first + count).some((o) => o !== undefined);
    if ((overlap !== undefined) !== modelOverlap) mismatches++;
    if (!modelOverlap) {
      const owner = owners[Math.floor(random() * owners.length)];
      space.insert(first, count, ExtentKind.Logical, owner);
      model.fill(owner, first, first + count);
    } else if (space.covered(first, count, ExtentKind.Logical)) {
      if (model.slice(first, first + count).some((o) => o === undefined)) mismatches++;
      let removed = 0;
      space.remove(first, count, (f, p, owner) => {
        for (let page = f; page < f + p; page++) if (model[page] !== owner) mismatches++;
        removed += p;
      });
      if (removed !== count) mismatches++;
      model.fill(undefined, first, first + count);
    }
  }
  for (let page = 0; page < pages; page++) if ((space.at(page)?.owner ?? undefined) !== model[page]) mismatches++;
  const list = space.extents();
  for (let i = 1; i < list.length; i++) if (list[i - 1]!.first + list[i - 1]!.pages > list[i]!.first) mismatches++;
  t.equal(mismatches, 0, 'overlapping, covered, remove callbacks and at agree with the model');
  t.ok(space.size > 50, `the space holds many extents (${space.size})`);
});
