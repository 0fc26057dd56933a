/** The official `openai` client pointed at a test gateway, and the SDK error a failing call throws. */
import assert from 'node:assert/strict';
import OpenAI from 'openai';

/** An SDK client for the gateway at `url` (its /v1 routes), with no retries so a failure shows at once. */
export function openaiClient(url: string, apiKey = 'x'): OpenAI {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

/** The APIError `promise` rejects with; fails the test when it resolves or rejects with anything else. */
export async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, `expected an APIError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected the call to fail');
}
