/** Redis faults become store faults (src/store/redis/faults.ts): pure classification, no network. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreError } from '../src/store/errors.js';
import { guarded, storeFault } from '../src/store/redis/faults.js';

test('connection loss, timeouts, retries used up and "not now" replies are STORE_UNAVAILABLE; OOM is STORE_FULL; our bugs stay as they are', async () => {
  const retries = Object.assign(new Error('Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.'), { name: 'MaxRetriesPerRequestError' });
  for (const error of [
    retries,
    new Error('Command timed out'),
    new Error('Connection is closed.'),
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' }),
    new Error('LOADING Redis is loading the dataset in memory'),
    new Error('READONLY You can\'t write against a read only replica.'),
    new Error('CLUSTERDOWN The cluster is down'),
  ]) {
    assert.equal(storeFault(error)?.code, 'STORE_UNAVAILABLE', error.message);
  }
  assert.equal(storeFault(new Error("OOM command not allowed when used memory > 'maxmemory'."))?.code, 'STORE_FULL');
  assert.equal(storeFault(new Error('ERR user_script:12: attempt to index a nil value')), undefined);
  assert.equal(storeFault('not an error'), undefined);

  await assert.rejects(guarded(() => Promise.reject(new Error('Command timed out'))), (e: unknown) => e instanceof StoreError && e.code === 'STORE_UNAVAILABLE' && /Redis/.test(e.message));
  const bug = new TypeError('x is undefined');
  await assert.rejects(guarded(() => Promise.reject(bug)), (e: unknown) => e === bug);
  assert.equal(await guarded(async () => 42), 42);
});
