import t from 'tap';
import { chromiumPath, launchChromium } from './chromium.js';

/** Without a browser the browser tests fail, saying how to get one; they never skip. */
t.test('a missing Chromium is an error that says how to install it', async (t) => {
  const saved = process.env.VIOMMU_CHROMIUM;
  t.teardown(() => {
    if (saved === undefined) delete process.env.VIOMMU_CHROMIUM;
    else process.env.VIOMMU_CHROMIUM = saved;
  });
  process.env.VIOMMU_CHROMIUM = '/nonexistent/chromium';
  const message =
    "no Chromium at /nonexistent/chromium: the browser tests need one. Install Debian's chromium with `bash scripts/install-browser.sh` " +
    '(as root; .ci/run does it), or point VIOMMU_CHROMIUM at a Chromium binary';
  t.throws(() => chromiumPath(), { message });
  await t.rejects(launchChromium(), { message });
});

t.test('the Chromium the browser tests use is installed', async (t) => {
  t.doesNotThrow(() => chromiumPath(), 'otherwise every browser test fails with the message above');
});
