/** What `sollol up` says at start-up about who may use the gateway. */
import type { ApiKey } from './keys.js';

export interface AccessNotice {
  readonly level: 'info' | 'warn';
  /** True when the gateway is open to the network: the warning is worded to be noticed. */
  readonly loud: boolean;
  readonly message: string;
}

/** Loopback addresses: only processes on this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

export function accessNotice(config: { readonly host: string; readonly apiKeys: readonly ApiKey[] }, url: string): AccessNotice {
  const keys = config.apiKeys;
  if (keys.length > 0) {
    const admins = keys.filter((k) => k.admin).length;
    const owners = [...new Set(keys.map((k) => k.owner))].join(', ');
    return {
      level: 'info',
      loud: false,
      message: `API keys: ${keys.length} (${admins} admin; owners: ${owners}); every route but /api/health, /api/version, /openapi.json and /docs needs one`,
    };
  }
  if (isLoopback(config.host)) {
    return {
      level: 'warn',
      loud: false,
      message: `no API keys configured: the gateway is open to every process on this machine (${url}, loopback only); set --api-key, SOLLOL_API_KEYS or --api-keys-file to require keys`,
    };
  }
  return {
    level: 'warn',
    loud: true,
    message:
      `SECURITY WARNING: NO API KEYS CONFIGURED and listening on ${url}: anyone who can reach this address can submit jobs, ` +
      `read every job's results and use your backends. Set --api-key or --api-keys-file (make a key with \`sollol hash-key --generate\`), ` +
      `or listen on 127.0.0.1`,
  };
}
