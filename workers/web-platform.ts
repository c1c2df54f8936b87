/**
 * The few Web APIs the browser backend uses, typed here: the package is type-checked against
 * Node's typings, without the DOM library, so that no Node module can lean on a browser API
 * by accident (and the other way round).
 */

/** A dedicated Web Worker, seen from the page. */
export interface WebWorker {
  postMessage(message: unknown): void;
  terminate(): void;
  addEventListener(type: 'message' | 'messageerror', listener: (event: { data: unknown }) => void): void;
  /** An uncaught error in the worker (an ErrorEvent), or a script that failed to load (a plain Event). */
  addEventListener(type: 'error', listener: (event: WorkerErrorEvent) => void): void;
}

export interface WorkerErrorEvent {
  message?: string;
  filename?: string;
  lineno?: number;
  error?: unknown;
  preventDefault(): void;
}

type WebWorkerConstructor = new (url: string | URL, options: { type: 'module'; name: string }) => WebWorker;

/** The Web Locks API (navigator.locks), in pages and workers of a secure context. */
export interface LockManager {
  request(name: string, callback: () => unknown): Promise<unknown>;
  request(name: string, options: { signal?: AbortSignal }, callback: () => unknown): Promise<unknown>;
}

/** A module Web Worker's global scope, seen from inside. */
export interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  /** A promise rejected with nobody to catch it. */
  addEventListener(type: 'unhandledrejection', listener: (event: { reason: unknown }) => void): void;
}

interface WebGlobals {
  Worker?: WebWorkerConstructor;
  navigator?: { hardwareConcurrency?: number; locks?: LockManager };
  crypto?: { randomUUID?: () => string };
}

const web = globalThis as unknown as WebGlobals;

export function workerConstructor(): WebWorkerConstructor {
  if (web.Worker === undefined) throw new Error('this environment has no Web Workers');
  return web.Worker;
}

/** navigator.locks, where there is one (every browser, in a secure context). */
export function lockManager(): LockManager | undefined {
  return web.navigator?.locks;
}

export function navigatorConcurrency(): number | undefined {
  return web.navigator?.hardwareConcurrency;
}

/** A name no other pool on this origin (another tab, say) will pick. */
export function uniqueName(prefix: string): string {
  const id = web.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}/${id}`;
}
