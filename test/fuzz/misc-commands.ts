import fc from 'fast-check';
import { Divergence, expectEqual } from './checks.js';
import { type Model, PAGE, PassThrough, Translate, Unmanaged } from './model.js';
import { FRAME_POOL, type Ref, refArb, resolve, showRef } from './refs.js';
import { P, S, Step } from './step.js';
import { w } from './domain-commands.js';
import { checkedDma } from './checked-dma.js';
import { FUNCTIONS, MEMORY_PAGES, type World } from './world.js';

class ConfigureDomain extends Step {
  constructor(
    readonly domain: Ref,
    readonly type: number,
    readonly ttbr: 'table' | 'misaligned' | 'beyond',
    readonly inputSize: number,
    readonly enabled: boolean,
  ) {
    super();
  }

  toString(): string {
    return `ConfigureDomain(${showRef(this.domain)}, Type ${this.type}, ttbr ${this.ttbr}, InputSize0 ${this.inputSize}, enabled ${this.enabled})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('domain', this.domain, m, w);
    const domain = id === null ? undefined : m.domains.get(id);
    const ttbr = this.ttbr === 'table' ? w.ttbrPage * PAGE : this.ttbr === 'misaligned' ? w.ttbrPage * PAGE + 64 : MEMORY_PAGES * PAGE;
    let expected: number = S.SUCCESS;
    if (domain === undefined || domain.type !== Unmanaged) expected = P(1);
    else if (this.type > 1) expected = P(2);
    else if (this.type === 1) expected = S.NOT_SUPPORTED;
    else if (this.ttbr !== 'table' || this.inputSize < 25 || this.inputSize > 48) expected = P(2);
    const configuration = { Type: this.type, Arm64: { Ttbr0: ttbr, InputSize0: this.inputSize, TranslationEnabled: this.enabled } };
    this.call(w, 'ConfigureDomain', expected, [value, configuration]);
    if (expected === S.SUCCESS) domain!.configured = { enabled: this.enabled };
  }
}

class Flush extends Step {
  constructor(
    readonly domain: Ref,
    readonly list: number[] | null,
    readonly numberDelta: number,
  ) {
    super();
  }

  toString(): string {
    return this.list === null
      ? `FlushDomain(${showRef(this.domain)})`
      : `FlushDomainByVaList(${showRef(this.domain)}, [${this.list}], Number ${this.list.length + this.numberDelta})`;
  }

  protected apply(m: Model, w: World): void {
    const { id, value } = resolve('domain', this.domain, m, w);
    const domain = id === null ? undefined : m.domains.get(id);
    let expected: number = domain === undefined || domain.type === PassThrough ? P(1) : S.SUCCESS;
    if (this.list === null) {
      this.call(w, 'FlushDomain', expected, [value]);
      return;
    }
    if (expected === S.SUCCESS && this.numberDelta !== 0) expected = P(3);
    this.call(w, 'FlushDomainByVaList', expected, [value, false, this.list.length + this.numberDelta, this.list]);
  }
}

class QueryInputMappings extends Step {
  constructor(
    readonly fn: number,
    readonly bufferLength: number,
    readonly withReturnLength: boolean,
  ) {
    super();
  }

  toString(): string {
    return `QueryInputMappings(fn ${this.fn}, ${this.bufferLength} bytes${this.withReturnLength ? ', ReturnLength' : ''})`;
  }

  protected apply(m: Model, w: World): void {
    const f = m.functions[this.fn];
    const pdo = w.functions[this.fn] ?? {};
    const buffer: unknown[] = [];
    const returnLength: { value?: number } = {};
    let expected: number = S.SUCCESS;
    if (f === undefined) expected = P(1);
    else if (!f.behindIommu) expected = S.UNSUCCESSFUL;
    else if (this.bufferLength < 4) expected = S.BUFFER_TOO_SMALL;
    this.call(w, 'QueryInputMappings', expected, [pdo, buffer, this.bufferLength, this.withReturnLength ? returnLength : null]);
    if (expected === S.SUCCESS) expectEqual(buffer, [{ InputMappingId: w.functions[this.fn]!.inputMappingId }], 'QueryInputMappings buffer');
    else expectEqual(buffer, [], 'QueryInputMappings buffer on failure');
    if (this.withReturnLength) expectEqual(returnLength.value, expected === S.SUCCESS || expected === S.BUFFER_TOO_SMALL ? 4 : undefined, 'ReturnLength');
  }
}

class AllocatePages extends Step {
  constructor(readonly count: number) {
    super();
  }

  toString(): string {
    return `memory.allocatePages(${this.count})`;
  }

  protected apply(m: Model, w: World): void {
    let pfns: number[] | undefined;
    let error: unknown;
    try {
      pfns = w.platform.memory.allocatePages(this.count);
    } catch (thrown) {
      error = thrown;
    }
    if (this.count > m.freePages) {
      if (!(error instanceof RangeError)) throw new Divergence(`allocatePages(${this.count}) with ${m.freePages} free: expected a RangeError`);
      return;
    }
    if (pfns === undefined) throw new Divergence(`allocatePages(${this.count}) threw ${String(error)}`);
    expectEqual(new Set(pfns).size, this.count, 'allocatePages: distinct frames');
    for (const pages of w.buffers.values()) if (pages.some((p) => pfns.includes(p))) throw new Divergence('allocatePages handed out a frame already allocated');
    const id = m.nextId();
    m.buffers.set(id, pfns);
    w.buffers.set(id, pfns);
    m.freePages -= this.count;
  }
}

class FreePages extends Step {
  constructor(
    readonly index: number,
    readonly twice: boolean,
  ) {
    super();
  }

  toString(): string {
    return `memory.freePages(buffer #${this.index}${this.twice ? ', then again' : ''})`;
  }

  protected apply(m: Model, w: World): void {
    const ids = [...m.buffers.keys()];
    if (ids.length === 0) return;
    const id = ids[this.index % ids.length]!;
    const pfns = m.buffers.get(id)!;
    w.platform.memory.freePages(pfns);
    m.buffers.delete(id);
    w.buffers.delete(id);
    m.freePages += pfns.length;
    if (!this.twice) return;
    let error: unknown;
    try {
      w.platform.memory.freePages(pfns);
    } catch (thrown) {
      error = thrown;
    }
    if (!(error instanceof RangeError)) throw new Divergence('a double free was not refused with a RangeError');
  }
}

/** Where a DMA goes: a page some domain of the function's device holds, one it lost, or a pool page. */
interface DmaTarget {
  from: 'held' | 'revoked' | 'pool';
  index: number;
  offset: number;
  length: number;
  write: boolean;
}

class Dma extends Step {
  constructor(
    readonly fn: number,
    readonly target: DmaTarget,
  ) {
    super();
  }

  toString(): string {
    return `dma(fn ${this.fn}, ${JSON.stringify(this.target)})`;
  }

  protected async apply(m: Model, w: World): Promise<void> {
    const device = [...m.devices.values()].find((d) => d.fn === this.fn);
    const domain = device?.domain === null || device === undefined ? undefined : m.domains.get(device.domain);
    const t = this.target;
    let page = t.index % FRAME_POOL;
    if (domain !== undefined && domain.type === Translate) {
      const list = t.from === 'held' ? [...domain.pages.keys()] : t.from === 'revoked' ? [...(m.revoked.get(domain.id) ?? [])] : [];
      if (list.length > 0) page = list.sort((a, b) => a - b)[t.index % list.length]!;
    }
    await checkedDma(m, w, this.fn, page * PAGE + t.offset, t.length, t.write, `${this}`);
  }
}

const rare = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) => fc.oneof({ weight: 12, arbitrary: usual }, { weight: 1, arbitrary: odd });

export const miscCommands: Array<fc.WeightedArbitrary<Step>> = [
  w(
    4,
    fc
      .tuple(
        refArb,
        rare(fc.constant(0), fc.constantFrom(1, 2)),
        rare(fc.constant('table' as const), fc.constantFrom('misaligned' as const, 'beyond' as const)),
        rare(fc.integer({ min: 25, max: 48 }), fc.constantFrom(24, 49)),
        fc.boolean(),
      )
      .map(([domain, type, ttbr, size, enabled]) => new ConfigureDomain(domain, type, ttbr, size, enabled)),
  ),
  w(
    2,
    fc
      .tuple(
        refArb,
        fc.option(
          fc.array(
            fc.nat(1 << 20).map((p) => p * PAGE),
            { maxLength: 3 },
          ),
        ),
        rare(fc.constant(0), fc.constantFrom(-1, 1)),
      )
      .map(([domain, list, delta]) => new Flush(domain, list, list === null || list.length + delta < 0 ? 0 : delta)),
  ),
  w(
    1,
    fc
      .tuple(fc.nat(FUNCTIONS.length), fc.constantFrom(0, 4, 8), fc.boolean())
      .map(([fnIndex, length, withReturn]) => new QueryInputMappings(fnIndex, length, withReturn)),
  ),
  w(
    2,
    rare(fc.integer({ min: 1, max: 16 }), fc.constant(5000)).map((count) => new AllocatePages(count)),
  ),
  w(
    2,
    fc.tuple(fc.nat(20), rare(fc.constant(false), fc.constant(true))).map(([index, twice]) => new FreePages(index, twice)),
  ),
];

export const dmaCommand: fc.WeightedArbitrary<Step> = w(
  14,
  fc
    .tuple(
      fc.nat(FUNCTIONS.length - 1),
      fc.record({
        from: fc.constantFrom('held' as const, 'held' as const, 'revoked' as const, 'pool' as const),
        index: fc.nat(500),
        offset: fc.oneof(fc.nat(64), fc.constantFrom(4092, 4095)),
        length: fc.integer({ min: 1, max: 8 }),
        write: fc.boolean(),
      }),
    )
    .map(([fnIndex, target]) => new Dma(fnIndex, target)),
);
