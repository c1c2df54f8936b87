import { threadId, workerData } from 'node:worker_threads';
import { createTaskRunner } from './task-runner.js';
import type { DmaWorkerData } from './worker-runtime.js';

/** The DMA worker in Node: piscina loads this module once per thread and calls its default export per task. */
export default createTaskRunner(workerData as DmaWorkerData, threadId);
