import { ENTRIES_PER_TABLE, type PageTablePool } from '../shared-memory/page-table-pool.js';
import type { WorkerSlots } from '../shared-memory/worker-slots.js';
import type { InvalidationLog } from '../shared-memory/invalidation-log.js';

/**
 * Hands out tables of the shared page-table pool (main thread only).
 *
 * A table that has been unlinked may still be under a walker that started before the
 * unlinking. So a retired table waits in quarantine until every worker has synchronised with
 * the invalidation sequence published after the unlinking (or is idle); only then is it
 * zeroed and reused. See workers/worker-slots.ts for the active-sequence protocol.
 */
export class PageTableAllocator {
  readonly pool: PageTablePool;
  readonly #slots: WorkerSlots;
  readonly #log: InvalidationLog;
  /** Never-used tables start here; table 0 is reserved as "no table". */
  #nextUnused = 1;
  #free: number[] = [];
  #quarantine: Array<{ table: number; retiredAt: number }> = [];
  #inUse = 0;

  constructor(pool: PageTablePool, slots: WorkerSlots, log: InvalidationLog) {
    this.pool = pool;
    this.#slots = slots;
    this.#log = log;
  }

  /** Tables currently part of some domain's tree. */
  get tablesInUse(): number {
    return this.#inUse;
  }

  /** Tables that `allocate` can hand out right now (after reclaiming what is safe). */
  available(): number {
    if (this.#free.length === 0) this.reclaim();
    return this.#free.length + (this.pool.tableCount - this.#nextUnused);
  }

  /** A zeroed table, or -1 when the pool is exhausted. */
  allocate(): number {
    let table: number;
    if (this.#free.length === 0) this.reclaim();
    if (this.#free.length > 0) {
      table = this.#free.pop()!;
      this.pool.entries.fill(0, table * ENTRIES_PER_TABLE, (table + 1) * ENTRIES_PER_TABLE);
    } else if (this.#nextUnused < this.pool.tableCount) {
      table = this.#nextUnused++;
    } else {
      return -1;
    }
    this.#inUse++;
    return table;
  }

  /**
   * Gives back a table that no entry links to any more. `retiredAt` is the invalidation
   * sequence that will be published after the unlinking (see InvalidationLog.publish).
   */
  retire(table: number, retiredAt: number): void {
    this.#inUse--;
    this.#quarantine.push({ table, retiredAt });
  }

  /** Moves quarantined tables that no worker can reach any more to the free list. */
  reclaim(): void {
    if (this.#quarantine.length === 0) return;
    const current = this.#log.sequence();
    let kept = 0;
    for (const entry of this.#quarantine) {
      if (this.#slots.allCaughtUpWith(entry.retiredAt, current)) this.#free.push(entry.table);
      else this.#quarantine[kept++] = entry;
    }
    this.#quarantine.length = kept;
  }
}
