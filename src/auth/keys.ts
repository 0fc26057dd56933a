/**
 * API keys as the gateway holds them: only the SHA-256 of each key is kept, in memory as in
 * the keys file, so a heap dump or a leaked file does not hand out working keys. Keys are
 * long random strings (see `sollol hash-key --generate`), so a fast hash is enough; a slow
 * password hash (scrypt) would cost every request milliseconds and buy nothing.
 *
 * Keys file (`--api-keys-file`), one key per line; blank lines and `#` comments are ignored:
 *
 *     <key | sha256:<64 hex>>  [name=<name>]  [admin]
 *
 * A job belongs to its key's owner id: the `name` when given (keys sharing a name share their
 * jobs, e.g. while a key is rotated), else `key-` and the first 12 hex digits of the key's hash.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export interface ApiKey {
  /** Owner of the jobs this key makes; never the key itself. */
  readonly owner: string;
  /** An admin key sees every job and the global stats. */
  readonly admin: boolean;
  /** SHA-256 of the key (32 bytes). */
  readonly hash: Buffer;
  /** Where the key came from, for messages: `--api-key #2`, `keys.txt line 4`. */
  readonly source: string;
  /** Signs this owner's webhooks (keys file `webhook_secret=<secret>`); else `--webhook-secret`. */
  readonly webhookSecret?: string;
}

/** Shortest plain key accepted: a guessable key would make the whole check pointless. */
export const MIN_KEY_LENGTH = 16;
const HASHED = /^sha256:([0-9a-f]{64})$/i;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** A problem with a configured key; the message never contains the key. */
export class KeyConfigError extends Error {}

/** `sha256:<hex>` of a key, the form the keys file stores. */
export function hashKey(key: string): string {
  return `sha256:${sha256(key).toString('hex')}`;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The owner id of a key without a name. */
export function ownerIdOf(hash: Buffer): string {
  return `key-${hash.toString('hex').slice(0, 12)}`;
}

/** One key given as a flag or environment value: plain, or already hashed (`sha256:<hex>`). */
export function parseKey(token: string, options: { admin: boolean; source: string; name?: string }): ApiKey {
  const hash = hashOfToken(token, options.source);
  return Object.freeze({ owner: options.name ?? ownerIdOf(hash), admin: options.admin, hash, source: options.source });
}

function hashOfToken(token: string, source: string): Buffer {
  const hashed = HASHED.exec(token);
  if (hashed) return Buffer.from(hashed[1]!.toLowerCase(), 'hex');
  if (/\s|,/.test(token)) throw new KeyConfigError(`${source}: a key may not contain spaces or commas`);
  if (token.length < MIN_KEY_LENGTH) {
    throw new KeyConfigError(`${source}: a key must be at least ${MIN_KEY_LENGTH} characters (got ${token.length}); make one with \`sollol hash-key --generate\``);
  }
  return sha256(token);
}

/** The keys of a keys file (format above). */
export function readKeysFile(file: string): ApiKey[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new KeyConfigError(`--api-keys-file ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const keys: ApiKey[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    keys.push(parseKeyLine(line, `--api-keys-file ${file} line ${i + 1}`));
  });
  if (keys.length === 0) throw new KeyConfigError(`--api-keys-file ${file} holds no key; add one per line: <key or sha256:<hex>> [name=<name>] [admin]`);
  return keys;
}

/** One line of a keys file (without comments); `source` names it in messages. */
export function parseKeyLine(line: string, source: string): ApiKey {
  const [token, ...rest] = line.split(/\s+/);
  let admin = false;
  let name: string | undefined;
  let webhookSecret: string | undefined;
  for (const field of rest) {
    if (field === 'admin') admin = true;
    else if (field.startsWith('name=')) name = nameField(field.slice('name='.length), source);
    else if (field.startsWith('webhook_secret=')) webhookSecret = secretField(field.slice('webhook_secret='.length), source);
    else throw new KeyConfigError(`${source}: unknown field ${JSON.stringify(field.slice(0, 40))}; expected name=<name>, webhook_secret=<secret> or admin`);
  }
  const key = parseKey(token ?? '', { admin, source, ...(name === undefined ? {} : { name }) });
  return webhookSecret === undefined ? key : Object.freeze({ ...key, webhookSecret });
}

function secretField(secret: string, source: string): string {
  if (secret.length < MIN_KEY_LENGTH) throw new KeyConfigError(`${source}: webhook_secret must be at least ${MIN_KEY_LENGTH} characters`);
  return secret;
}

function nameField(name: string, source: string): string {
  if (!NAME.test(name)) throw new KeyConfigError(`${source}: name must be 1-64 letters, digits or ._@- (starting with a letter or digit)`);
  if (name.startsWith('key-')) throw new KeyConfigError(`${source}: names starting with "key-" are reserved for keys without a name`);
  return name;
}

/** Refuses the same key given twice (under two names it would be ambiguous). */
export function checkDistinct(keys: readonly ApiKey[]): void {
  const seen = new Map<string, string>();
  for (const key of keys) {
    const hex = key.hash.toString('hex');
    const first = seen.get(hex);
    if (first !== undefined) throw new KeyConfigError(`${key.source}: the same key as ${first}`);
    seen.set(hex, key.source);
  }
}
