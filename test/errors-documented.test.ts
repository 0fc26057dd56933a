/** Every stable error code is documented in the README, so clients can rely on it (fastify's habit). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ITEM_ERROR_CODES } from '../src/backends/errors.js';
import { API_ERRORS } from '../src/errors.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('every API error code is in the README with its status', () => {
  for (const [code, status] of Object.entries(API_ERRORS)) {
    assert.match(readme, new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`), `${code} (${status}) missing from the README's error table`);
  }
});

test('every per-item error code is in the README', () => {
  for (const code of ITEM_ERROR_CODES) {
    assert.match(readme, new RegExp(`\\|\\s*\`${code}\`\\s*\\|`), `${code} missing from the README's item code table`);
  }
});
