import type { Opaque, opaque } from '../../base/opaque.js';

/**
 * Opaque handles: the objects the IOMMU issues for domains, DMA devices and tokens. A
 * handle carries its state under a registry-private, non-enumerable symbol key, so a copy of
 * a real handle (spread, Object.assign, structuredClone), an object inheriting from one, a
 * made-up object, a handle of another kind or a revoked handle is simply unknown (the routine answers
 * STATUS_INVALID_PARAMETER_N). A symbol-keyed load is much cheaper than a WeakMap lookup.
 */
/** A handle's fields without the type brand: what a routine builds before the handle exists. */
export type HandleFields<Handle> = Omit<Handle, typeof opaque>;

/**
 * The handle made of `fields`: the one place where an object takes an opaque handle type
 * (the object stays the same; HandleRegistry.issue then freezes it with its state).
 */
export function mintHandle<Handle extends Opaque<string>>(fields: HandleFields<Handle>): Handle {
  return fields as Handle;
}

export class HandleRegistry<State extends { live: boolean; readonly handle: object }> {
  readonly #key = Symbol('viommu.handle');

  /** Freezes `handle` with `state` attached and returns it. */
  issue<Handle extends object>(handle: Handle, state: State): Handle {
    Object.defineProperty(handle, this.#key, { value: state, enumerable: false, writable: false, configurable: false });
    return Object.freeze(handle);
  }

  get(handle: unknown): State | undefined {
    if (typeof handle !== 'object' || handle === null) return undefined;
    const state = (handle as Record<symbol, State | undefined>)[this.#key];
    // The identity check refuses objects that merely inherit from a handle.
    return state?.live && state.handle === handle ? state : undefined;
  }

  /** The handle stops being valid for good. */
  revoke(handle: object): void {
    const state = (handle as Record<symbol, State | undefined>)[this.#key];
    if (state !== undefined) state.live = false;
  }
}
