import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Loads an ES module by URL inside a worker. TypeScript sources (tests and benchmarks run
 * under tsx) go through require(): in worker threads tsx hooks only the CommonJS loader,
 * which is also how piscina loads the worker itself. Everything else is a plain import.
 */
export async function loadModule(url: string): Promise<Record<string, unknown>> {
  if (url.endsWith('.ts')) return createRequire(import.meta.url)(fileURLToPath(url)) as Record<string, unknown>;
  return (await import(url)) as Record<string, unknown>;
}
