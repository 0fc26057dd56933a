/**
 * `sollol hash-key`: prints the `sha256:<hex>` form of an API key, the form a keys file (or
 * `--api-key`) can hold so the key itself is stored nowhere on the server. `--generate`
 * makes a new random key and prints it with its keys-file line.
 */
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { hashKey, KeyConfigError, parseKey, parseKeyLine } from '../auth/keys.js';
import { fail } from './fail.js';

interface HashKeyOptions {
  generate?: boolean;
  name?: string;
  admin?: boolean;
}

export function hashKeyCommand(): Command {
  return new Command('hash-key')
    .description('Print the sha256:<hex> form of an API key for --api-keys-file or --api-key (the key is read from stdin when not given)')
    .argument('[key]', 'the key; better piped on stdin, which keeps it out of the shell history')
    .option('--generate', 'make a new random key; prints the key (give it to the client) and its keys-file line')
    .option('--name <name>', 'the name= field of the printed line (the owner of the key\'s jobs)')
    .option('--admin', 'mark the printed line admin')
    .action(async (key: string | undefined, options: HashKeyOptions) => {
      try {
        if (options.generate) return generate(options);
        const plain = key ?? (await readStdin());
        parseKey(plain, { admin: false, source: 'the key' });
        process.stdout.write(`${keyLine(hashKey(plain), options)}\n`);
      } catch (error) {
        if (error instanceof KeyConfigError) fail(error.message);
        throw error;
      }
    });
}

function generate(options: HashKeyOptions): void {
  const key = `sollol_${randomBytes(24).toString('base64url')}`;
  process.stdout.write(`key:  ${key}\nline: ${keyLine(hashKey(key), options)}\n`);
}

/** The keys-file line, checked by the same parser the gateway uses. */
function keyLine(hash: string, options: HashKeyOptions): string {
  const line = [hash, ...(options.name !== undefined ? [`name=${options.name}`] : []), ...(options.admin ? ['admin'] : [])].join(' ');
  parseKeyLine(line, 'the line');
  return line;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('API key (then Enter): ');
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0]!.trim();
}
