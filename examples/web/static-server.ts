import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';

/**
 * A small static file server (node:http) for the web demo, the browser tests and the browser
 * benchmark. Every response carries the two headers that make a page cross-origin isolated,
 * without which a page has no SharedArrayBuffer, unless `crossOriginIsolated` is false.
 * Only GET and HEAD; nothing outside the mounted folders is ever served.
 */
export interface StaticServerOptions {
  /** URL path prefix ('/', '/dist/browser/') to folder; the longest matching prefix serves. */
  mounts: Record<string, string>;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: this machine only. */
  host?: string;
  /** Send Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy (default true). */
  crossOriginIsolated?: boolean;
}

export interface StaticServer {
  /** http://localhost:PORT/ */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

export async function startStaticServer(options: StaticServerOptions): Promise<StaticServer> {
  const mounts = Object.entries(options.mounts)
    .map(([prefix, folder]) => ({ prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, folder: resolve(folder) }))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const isolated = options.crossOriginIsolated ?? true;
  const server = createServer((request, response) => {
    serve(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...(isolated ? ISOLATION_HEADERS : {}) };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = await fileFor(request.url ?? '/');
    if (file === null) {
      response.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    response.writeHead(200, { ...headers, 'Content-Type': CONTENT_TYPES[extname(file.path)] ?? 'application/octet-stream', 'Content-Length': file.size });
    if (request.method === 'HEAD') response.end();
    else createReadStream(file.path).pipe(response);
  }

  /** The file a URL path names, or null (unknown, outside every mount, or not a file). */
  async function fileFor(url: string): Promise<{ path: string; size: number } | null> {
    let path: string;
    try {
      path = decodeURIComponent(new URL(url, 'http://localhost').pathname);
    } catch {
      return null;
    }
    if (path.includes('\0')) return null;
    const mount = mounts.find((m) => path.startsWith(m.prefix) || `${path}/` === m.prefix);
    if (mount === undefined) return null;
    let target = resolve(join(mount.folder, path.slice(mount.prefix.length)));
    if (target !== mount.folder && !target.startsWith(mount.folder + sep)) return null;
    let found = await stat(target).catch(() => null);
    if (found?.isDirectory()) {
      target = join(target, 'index.html');
      found = await stat(target).catch(() => null);
    }
    return found?.isFile() ? { path: target, size: found.size } : null;
  }

  await new Promise<void>((ready, failed) => {
    server.once('error', failed);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => ready());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${port}/`,
    port,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
