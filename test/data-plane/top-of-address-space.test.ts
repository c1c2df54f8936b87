import t from 'tap';
import { STATUS_SUCCESS, TranslationFault } from '../../machine/index.js';
import { deviceInTranslateDomain, out, PAGE, pfnArray, platformFor, RW, v2Of } from '../helpers/fixture.js';

// Found by the fuzzer: a 2-byte read at 2^53 - 1 through the last page of a domain without an
// allocator succeeded and returned the first byte of the next physical page (the float sum of
// address and length rounded, so only the last page was translated).
t.test('an access whose last byte lies past 2^53 - 1 faults at 2^53 and moves nothing', async (t) => {
  const platform = await platformFor(t, { workers: 1 });
  const V2 = v2Of(platform);
  const { fn, domain } = deviceInTranslateDomain(platform, V2, { device: 1 }, null);
  const top = 2 ** 53 - PAGE;
  const frame = platform.memory.allocateContiguousPages(2);
  t.equal(V2.MapLogicalRangeEx(domain, RW, pfnArray([frame]), top, null, null, out()), STATUS_SUCCESS);
  platform.memory.write(frame * PAGE + PAGE - 1, [0xab]);
  t.same(await platform.dma(fn, { address: 2 ** 53 - 1, length: 1 }), { ok: true, data: new Uint8Array([0xab]) }, 'the last byte itself is mapped');
  t.match(await platform.dma(fn, { address: 2 ** 53 - 1, length: 2 }), { ok: false, faultType: TranslationFault, faultAddress: 2 ** 53 });
  t.match(await platform.dma(fn, { address: 2 ** 53 - 100, length: 1000 }), { ok: false, faultType: TranslationFault, faultAddress: 2 ** 53 });
  t.match(await platform.dma(fn, { address: 2 ** 53 - 1, write: [1, 2] }), { ok: false, faultType: TranslationFault }, 'writes too');
  t.same([...platform.memory.read(frame * PAGE + PAGE - 1, 2)], [0xab, 0], 'nothing was written');
});
