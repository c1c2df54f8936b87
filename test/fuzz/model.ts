/**
 * The fuzzer's reference model of the V2 control plane, written from the contract
 * (shared design contract and docs/contract-decisions.md), not from the implementation: every
 * domain's logical space is a plain map from page number to what is there, and buddy
 * allocation is judged by the one property a coalescing buddy allocator guarantees (an
 * aligned, wholly free block of the right order exists exactly when allocation can succeed).
 * Sizes are kept small by the commands, so page-level bookkeeping stays cheap.
 */

export const PAGE = 4096;
export const READ = 1;
export const WRITE = 2;

export const Translate = 0;
export const PassThrough = 1;
export const Unmanaged = 2;
export const TranslateS1 = 3;

/** What one logical page of a Translate domain holds. */
type PageEntry =
  | { kind: 'logical'; frame: number; perm: number; block: Block | null }
  | { kind: 'identity'; frame: number; perm: number }
  | { kind: 'token'; token: number }
  | { kind: 'hole' };

/** A buddy block taken by a map, a reservation, a reserved region or the allocator itself. */
export interface Block {
  first: number;
  pages: number;
  /** Regions and page 0 are claimed for good; maps and tokens give their block back. */
  permanent: boolean;
}

export interface DomainModel {
  id: number;
  type: number;
  buddy: boolean;
  /** Logical pages of the address space (Translate). */
  spacePages: number;
  pages: Map<number, PageEntry>;
  blocks: Block[];
  devices: Set<number>;
  tokens: Set<number>;
  /** Unmanaged: null until configured. */
  configured: { enabled: boolean } | null;
}

export interface DeviceModel {
  id: number;
  /** Index of its PCI function in the world's fixed list. */
  fn: number;
  domain: number | null;
  reporting: boolean;
  registered: { callback: number; lastMask: number } | null;
}

export interface TokenModel {
  id: number;
  domain: number;
  first: number;
  pages: number;
  block: Block | null;
  /** Mapped segments by page offset: frames and permissions. */
  segments: Map<number, { frames: number[]; perm: number }>;
}

export interface Policy {
  kernelDmaProtection: boolean;
  dmaGuardPolicy: 0 | 1 | 2;
  userUnlocked: boolean;
}

/** One fault a FaultHandler must have received. */
export interface ExpectedFault {
  device: number;
  address: number;
  type: number;
  write: boolean;
  domain: number | null;
}

export interface FunctionModel {
  behindIommu: boolean;
  externalFacing: boolean;
}

export class Model {
  readonly domains = new Map<number, DomainModel>();
  readonly devices = new Map<number, DeviceModel>();
  readonly tokens = new Map<number, TokenModel>();
  /** Handles deleted or freed: any use is a bad parameter. */
  readonly deadDomains: number[] = [];
  readonly deadDevices: number[] = [];
  readonly deadTokens: number[] = [];
  policy: Policy = { kernelDmaProtection: true, dmaGuardPolicy: 1, userUnlocked: true };
  /** Guest pages the memory helpers have free. */
  freePages: number;
  /** Live guest page buffers (from allocatePages), by id. */
  readonly buffers = new Map<number, number[]>();
  /** Faults raised, delivered to handlers and suppressed (reporting off). */
  raised = 0;
  delivered = 0;
  suppressed = 0;
  readonly expectedFaults: ExpectedFault[] = [];
  /** State-change callback calls the callbacks must have received: [device id, mask]. */
  readonly expectedStateChanges: Array<[number, number]> = [];
  /** Logical pages once mapped and since unmapped, per domain id: they must fault now unless mapped again. */
  readonly revoked = new Map<number, Set<number>>();
  #nextId = 1;

  constructor(
    readonly functions: readonly FunctionModel[],
    readonly memoryPages: number,
    readonly maxDomains: number,
    freePages: number,
  ) {
    this.freePages = freePages;
  }

  nextId(): number {
    return this.#nextId++;
  }

  /** The domain-type mask the policy leaves a function (bit 1 << DomainType). */
  availableMask(fn: number): number {
    const f = this.functions[fn]!;
    const p = this.policy;
    const passThrough = !p.kernelDmaProtection || !f.externalFacing || p.dmaGuardPolicy === 2 || (p.dmaGuardPolicy === 1 && p.userUnlocked);
    return (1 << Translate) | (1 << Unmanaged) | (passThrough ? 1 << PassThrough : 0);
  }

  /** Notes that `pages` of `domain` no longer translate (they must fault from now on). */
  revoke(domain: number, first: number, pages: number): void {
    let set = this.revoked.get(domain);
    if (set === undefined) this.revoked.set(domain, (set = new Set()));
    for (let p = first; p < first + pages; p++) set.add(p);
    this.lastRevoked.set(domain, first);
  }

  /** Per domain id: the first page of its latest unmap (the data-plane check aims a DMA at it). */
  readonly lastRevoked = new Map<number, number>();

  /** What a DMA through `domain` to logical page `page` finds: a frame and permissions, or the fault type. */
  translate(domain: DomainModel, page: number): { frame: number; perm: number } | { fault: number } {
    if (domain.type === PassThrough) return page < this.memoryPages ? { frame: page, perm: READ | WRITE } : { fault: 1 /* AddressSizeFault */ };
    if (domain.type === Unmanaged) {
      if (domain.configured === null || domain.configured.enabled) return { fault: 6 }; // unconfigured, or an all-invalid table
      return page < this.memoryPages ? { frame: page, perm: READ | WRITE } : { fault: 1 };
    }
    const entry = domain.pages.get(page);
    if (entry === undefined || entry.kind === 'hole') return { fault: 6 };
    if (entry.kind === 'token') {
      const token = this.tokens.get(entry.token)!;
      const offset = page - token.first;
      for (const [at, segment] of token.segments) {
        if (offset >= at && offset < at + segment.frames.length) return { frame: segment.frames[offset - at]!, perm: segment.perm };
      }
      return { fault: 6 };
    }
    return { frame: entry.frame, perm: entry.perm };
  }

  /** True when any page of [first, first + pages) holds anything. */
  occupied(domain: DomainModel, first: number, pages: number): boolean {
    for (let p = first; p < first + pages; p++) if (domain.pages.has(p)) return true;
    return false;
  }

  /** Gives back every non-permanent block of `domain` that no page of a logical mapping holds any more. */
  releaseEmptyBlocks(domain: DomainModel): void {
    for (let i = domain.blocks.length - 1; i >= 0; i--) {
      const block = domain.blocks[i]!;
      if (block.permanent) continue;
      let used = false;
      for (const entry of domain.pages.values()) if (entry.kind === 'logical' && entry.block === block) used = true;
      // Token blocks go with FreeReservedLogicalAddressRange, not here.
      if ([...this.tokens.values()].some((t) => t.block === block)) used = true;
      if (!used) domain.blocks.splice(i, 1);
    }
  }
}

/** ceil(log2(pages)): the buddy order of a request. */
export function orderFor(pages: number): number {
  let order = 0;
  while (2 ** order < pages) order++;
  return order;
}
