import t from 'tap';
import { V2_ROUTINE_NAMES } from '../../machine/index.js';
import { runFuzz } from './runner.js';

// A bounded run of the model-based fuzzer (`npm run fuzz -- --seconds N` runs long): random
// sequences of all 22 routines, DMA, guest-page and policy changes, each command checked
// against the reference model (statuses, every translation, faults, callbacks, free pages).
t.test('sequences of V2 calls, DMA and platform changes agree with the reference model', async (t) => {
  const result = await runFuzz({ seed: 20261204, runs: 250 });
  if (result.failure !== null) {
    t.fail(`divergence: ${result.failure.error}\n  ${result.failure.commands.join('\n  ')}\nreplay: npm run fuzz -- ${result.failure.replay}`);
    return;
  }
  t.equal(result.sequences, 250);
  t.ok(result.steps > 5000, `${result.steps} commands checked`);
  // The sequences reach every routine, and every routine both succeeds and refuses.
  for (const name of V2_ROUTINE_NAMES) {
    if (name === 'QueryAvailableDomainTypes') continue; // returns nothing; checked after every command
    const seen = result.statuses[name] ?? [];
    t.ok(seen.includes('0x0'), `${name} succeeded (${seen.join(', ')})`);
    t.ok(
      seen.some((s) => s !== '0x0'),
      `${name} refused`,
    );
  }
});
