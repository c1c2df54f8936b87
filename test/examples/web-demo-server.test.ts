import { spawn } from 'node:child_process';
import { request } from 'node:http';
import t from 'tap';

/**
 * `npm run demo:web` (examples/web/serve.ts): prints its URL, serves the page, the browser
 * build and uPlot with both isolation headers, nothing outside them, and stops on Ctrl-C.
 */
const root = new URL('../../', import.meta.url);

function get(url: string, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    // A raw path, so that '..' reaches the server as sent.
    const target = new URL(url);
    const req = request({ host: '127.0.0.1', port: target.port, path, method }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the web demo server prints its URL, serves with the isolation headers, and stops on SIGINT', async (t) => {
  const server = spawn(process.execPath, ['--import', 'tsx', 'examples/web/serve.ts', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
  });
  let stdout = '';
  server.stdout.setEncoding('utf8');
  server.stdout.on('data', (chunk: string) => (stdout += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${stdout}`)), 60_000);
    server.stdout.on('data', () => {
      const found = /viommu web demo: (http:\/\/localhost:\d+\/)/.exec(stdout);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    });
  });

  const page = await get(url, '/');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
  t.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
  t.match(page.body, '<script type="module" src="./demo.js"></script>');
  for (const path of ['/demo.js', '/dist/browser/index.js', '/dist/browser/dma-worker.js', '/vendor/uplot/uPlot.esm.js', '/vendor/uplot/uPlot.min.css']) {
    const file = await get(url, path, 'HEAD');
    t.equal(file.status, 200, path);
    t.equal(file.headers['cross-origin-embedder-policy'], 'require-corp', `${path} is sent with the headers`);
  }
  t.equal((await get(url, '/../package.json')).status, 404, 'nothing above the served folders');
  t.equal((await get(url, '/dist/browser/%2e%2e/index.js')).status, 404, 'not even encoded');
  t.equal((await get(url, '/dist/index.js')).status, 404, 'only the browser build of dist/');
  t.equal((await get(url, '/', 'POST')).status, 405);

  const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
  server.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C stops it cleanly');
  t.match(stdout, /Ctrl-C stops the server\.\n\nstopped\n$/);
});

t.test('bad options exit with status 2 naming the option', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/web/serve.ts', '--port', 'eighty'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 2);
  t.match(stderr, /demo:web: --port must be an integer in 0\.\.65535 \(got "eighty"\)/);
});
