/**
 * "Run this after the events already queued": Node's setImmediate where there is one (so
 * nothing changes in Node), else a MessageChannel, in a page or a Web Worker (setTimeout(0)
 * is clamped to 4 ms once nested).
 */
type Callback = () => void;
/** The Web's MessageChannel, as far as used here (Node's typings describe Node's own). */
interface WebMessageChannel {
  port1: { onmessage: (() => void) | null };
  port2: { postMessage(message: null): void };
}

const nodeSetImmediate = (globalThis as { setImmediate?: (callback: Callback) => unknown }).setImmediate;

function messageChannelScheduler(): (callback: Callback) => void {
  const queue: Callback[] = [];
  let channel: WebMessageChannel | null = null;
  return (callback) => {
    if (channel === null) {
      channel = new MessageChannel() as unknown as WebMessageChannel;
      // One message per callback: each runs in a task of its own, as setImmediate callbacks do.
      channel.port1.onmessage = () => queue.shift()?.();
    }
    queue.push(callback);
    channel.port2.postMessage(null);
  };
}

/** Calls `callback` once the events already queued have been handled. */
export const runSoon: (callback: Callback) => void =
  typeof nodeSetImmediate === 'function' ? (callback) => void nodeSetImmediate(callback) : messageChannelScheduler();

/** Resolves once the events already queued have been handled. */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => runSoon(resolve));
}
