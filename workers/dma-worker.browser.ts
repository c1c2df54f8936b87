import { createTaskRunner } from './task-runner.js';
import type { WorkerTask } from './tasks.js';
import { lockManager, type WorkerScope } from './web-platform.js';
import type { FromWorker, ToWorker } from './web-worker-protocol.js';

/**
 * The DMA worker in a web page: a module Web Worker started by web-worker-pool.ts. It gets
 * the shared buffers and its id once (`init`), takes a Web Lock that it holds until it ends
 * (that is how the page learns it is gone), and then runs the same task protocol as the
 * Node worker, one message per task.
 */
const scope = globalThis as unknown as WorkerScope;
let runTask: ((task: WorkerTask) => Promise<unknown>) | null = null;

function post(message: FromWorker): void {
  scope.postMessage(message);
}

scope.addEventListener('message', (event) => {
  const message = event.data as ToWorker;
  if (message.kind === 'init') void start(message);
  else void run(message.id, message.task);
});

// Node ends a worker thread on a rejection nobody caught; the pool does the same with this one.
scope.addEventListener('unhandledrejection', (event) => post({ kind: 'fatal', error: event.reason }));

async function start(init: Extract<ToWorker, { kind: 'init' }>): Promise<void> {
  try {
    if (init.lockName !== null) await holdForLife(init.lockName);
    runTask = createTaskRunner(init.data, init.threadId);
    post({ kind: 'ready' });
  } catch (error) {
    post({ kind: 'failed', error });
  }
}

/** Takes the lock `name` and never lets it go: the browser releases it when this worker ends. */
function holdForLife(name: string): Promise<void> {
  const locks = lockManager();
  if (locks === undefined) return Promise.resolve();
  return new Promise((held, failed) => {
    locks
      .request(name, () => {
        held();
        return new Promise(() => {});
      })
      .catch(failed);
  });
}

async function run(id: number, task: WorkerTask): Promise<void> {
  let message: FromWorker;
  try {
    message = { kind: 'result', id, ok: true, value: await runTask!(task) };
  } catch (error) {
    message = { kind: 'result', id, ok: false, error };
  }
  try {
    post(message);
  } catch (error) {
    // A result (or an error) that cannot be cloned: the task fails, saying why.
    const why = error instanceof Error ? error.message : String(error);
    post({ kind: 'result', id, ok: false, error: new Error(`the result of a '${task.kind}' task cannot be sent to the page: ${why}`) });
  }
}
