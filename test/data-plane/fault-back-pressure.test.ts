import t from 'tap';
import { TranslationFault } from '../../machine/index.js';
import { FaultRingWriter, STALL_EVERY, STALL_MILLISECONDS } from '../../iommu/data-plane/fault-ring-writer.js';
import { DeviceContextTable } from '../../iommu/shared-memory/device-context-table.js';
import { DomainTable } from '../../iommu/shared-memory/domain-table.js';
import { FaultRings, kFaultAddressValid, kRaisedField } from '../../iommu/shared-memory/fault-rings.js';

/**
 * Back-pressure on a flooding device: a writer in a DMA worker (mayStall) sleeps once every
 * STALL_EVERY faults that a muted device raises, for STALL_MILLISECONDS, and never for a
 * device that is not muted; a writer on the platform's own thread never sleeps. Atomics.wait
 * is watched rather than the clock (no timing in tests).
 */

const DEVICES = 4;

function rig(mayStall: boolean) {
  const rings = FaultRings.create(1, 64, DEVICES);
  const writer = new FaultRingWriter(rings, 0, DeviceContextTable.create(DEVICES), DomainTable.create(2), mayStall);
  const raise = (device: number, times: number) => {
    for (let i = 0; i < times; i++) writer.raise(device, -1, 0, 0x1000 * i, kFaultAddressValid, TranslationFault, device, true);
  };
  return { rings, raise };
}

/** Runs `body` with Atomics.wait replaced by a recorder; the timeouts it was called with. */
function stallsDuring(body: () => void): number[] {
  const original = Atomics.wait;
  const timeouts: number[] = [];
  Atomics.wait = ((_array: Int32Array, _index: number, _value: number, timeout?: number) => {
    timeouts.push(timeout ?? Number.POSITIVE_INFINITY);
    return 'timed-out';
  }) as typeof Atomics.wait;
  try {
    body();
  } finally {
    Atomics.wait = original;
  }
  return timeouts;
}

t.test('a muted device stalls its worker once every STALL_EVERY faults; its faults are still counted', async (t) => {
  const { rings, raise } = rig(true);
  Atomics.store(rings.muted, 1, 1);
  const timeouts = stallsDuring(() => raise(1, 2 * STALL_EVERY + 10));
  t.same(timeouts, [STALL_MILLISECONDS, STALL_MILLISECONDS], 'two stalls, each of STALL_MILLISECONDS');
  t.equal(rings.uints[rings.headerOf(0) + kRaisedField], 2 * STALL_EVERY + 10, 'every fault raised is counted');
});

t.test('a device that is not muted never stalls, even beside a muted one', async (t) => {
  const { rings, raise } = rig(true);
  Atomics.store(rings.muted, 1, 1);
  t.same(
    stallsDuring(() => raise(2, 4 * STALL_EVERY)),
    [],
    'device 2 floods unmuted: no stall',
  );
  Atomics.store(rings.muted, 1, 0);
  t.same(
    stallsDuring(() => raise(1, 4 * STALL_EVERY)),
    [],
    'device 1 once unmuted: no stall',
  );
});

t.test("a writer on the platform's own thread never stalls", async (t) => {
  const { rings, raise } = rig(false);
  Atomics.store(rings.muted, 1, 1);
  t.same(
    stallsDuring(() => raise(1, 4 * STALL_EVERY)),
    [],
  );
});
