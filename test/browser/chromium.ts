import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (which never downloads a browser here): the
 * browser tests and `npm run bench -- --browser` run in it. No browser is an error that says
 * how to get one, never a reason to skip.
 */
const DEFAULT_CHROMIUM = '/usr/bin/chromium';

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium binary: $VIOMMU_CHROMIUM, else /usr/bin/chromium; throws, saying how to install it, when there is none. */
export function chromiumPath(): string {
  const path = process.env.VIOMMU_CHROMIUM || DEFAULT_CHROMIUM;
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: the browser tests need one. Install Debian's chromium with \`bash scripts/install-browser.sh\` ` +
        '(as root; .ci/run does it), or point VIOMMU_CHROMIUM at a Chromium binary',
    );
  }
  return path;
}

export interface Chromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile (--user-data-dir), removed again by close(). */
export async function launchChromium(): Promise<Chromium> {
  const executablePath = chromiumPath();
  const profile = mkdtempSync(join(tmpdir(), 'viommu-chromium-'));
  try {
    // launchPersistentContext is how playwright takes a --user-data-dir of our choosing.
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 900 },
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
}
