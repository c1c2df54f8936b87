/**
 * `npm run demo:web`: bundles the web demo (examples/web/page/) and serves it on localhost
 * with the two headers that make the page cross-origin isolated, next to the package's
 * browser build (dist/browser/) and uPlot. Prints the URL; Ctrl-C stops it.
 */
import { join } from 'node:path';
import { flag, integerIn, OptionError, parseCommandLine, text, usageLines, value } from '../cli/command-line.js';
import { bundleDemo, pageMounts, projectRoot } from './page-bundle.js';
import { startStaticServer } from './static-server.js';

const OPTIONS = {
  port: value('N', 'the port to listen on (default 8430; 0 picks a free one)', 8430, integerIn(0, 65535)),
  host: value('ADDRESS', 'the address to listen on (default 127.0.0.1: this machine only)', '127.0.0.1', text),
  'without-isolation': flag('leave out the two cross-origin isolation headers, to see what a page gets without them'),
};
const USAGE = `usage: npm run demo:web -- [options]\n\n${usageLines(OPTIONS)}`;

let options: ReturnType<typeof parseCommandLine<typeof OPTIONS>>;
try {
  options = parseCommandLine(process.argv.slice(2), OPTIONS);
} catch (error) {
  if (!(error instanceof OptionError)) throw error;
  console.error(`demo:web: ${error.message}`);
  process.exit(2);
}
if (options === 'help') {
  console.log(USAGE);
  process.exit(0);
}

const pages = join(projectRoot(), '.web', 'demo');
await bundleDemo(pages);
const server = await startStaticServer({
  mounts: pageMounts(pages),
  port: options.port,
  host: options.host,
  crossOriginIsolated: !options['without-isolation'],
});
const url = options.host === '127.0.0.1' || options.host === 'localhost' ? server.url : `http://${options.host}:${server.port}/`;
console.log(`viommu web demo: ${url}${options['without-isolation'] ? ' (without cross-origin isolation: the page will say what is missing)' : ''}`);
console.log('Ctrl-C stops the server.');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close();
  console.log('\nstopped');
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
