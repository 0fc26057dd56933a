/** Key helpers for the distributed-mode tests: every test works under its own prefix and deletes it after. */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A prefix no other test (or run) uses. */
export function uniquePrefix(label = 'test'): string {
  return `sollol-${label}-${randomUUID().slice(0, 8)}:`;
}

/** Every key under `prefix`. */
export async function scanKeys(client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanStream({ match: `${prefix}*`, count: 1000 })) keys.push(...(batch as string[]));
  return keys;
}

export async function deletePrefix(client: Redis, prefix: string): Promise<void> {
  const keys = await scanKeys(client, prefix);
  for (let i = 0; i < keys.length; i += 1000) await client.unlink(...keys.slice(i, i + 1000));
}
