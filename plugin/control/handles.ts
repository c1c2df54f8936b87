/**
 * Opaque handles: the objects the plugin issues for domains, DMA devices and tokens. A
 * handle is valid only while registered here, so a copy of a real handle, a made-up object
 * or a deleted handle is simply unknown (the routine answers STATUS_INVALID_PARAMETER_N).
 */
export class HandleRegistry<State> {
  #states = new WeakMap<object, State>();

  issue<Handle extends object>(handle: Handle, state: State): Handle {
    this.#states.set(handle, state);
    return handle;
  }

  get(handle: unknown): State | undefined {
    return typeof handle === 'object' && handle !== null ? this.#states.get(handle) : undefined;
  }

  revoke(handle: object): void {
    this.#states.delete(handle);
  }
}
