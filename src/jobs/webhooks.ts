/**
 * Webhooks: a job (or template run) with a `callback_url` is POSTed
 * `{job_id, status, progress, completed_at}` once it is terminal, signed
 * `X-SOLLOL-Signature: sha256=<hex HMAC-SHA256 of "<X-SOLLOL-Timestamp>.<body>">` with the
 * owner's keys-file `webhook_secret` or else `--webhook-secret`. A delivery that does not get a
 * 2xx is retried with exponential backoff (base, 2x base, 4x base ...) for
 * `SOLLOL_WEBHOOK_RETRY_FOR` seconds after the first attempt, then given up (`failed`); every
 * attempt (time, status code or error) is kept on the job. Only hosts in
 * `--webhook-allow-hosts` may be named (default none: refused at submit with 400), and
 * redirects are not followed, so the gateway cannot be made to call an internal service.
 *
 * The webhook and its deliveries are in the store; one background task (background.ts)
 * claims due ones atomically (a lease), so a restart or another gateway carries on and a
 * delivery is sent by one gateway at a time.
 */
import { createHmac } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ControlStore, Webhook, WebhookAttempt } from '../store/control.js';
import type { JobStore } from '../store/types.js';
import type { BackgroundTasks } from './background.js';
import { ADMIN_SCOPE } from './model.js';
import { isTerminal } from './state.js';
import { isoTime, statusView } from './view.js';

export interface WebhookSettings {
  /** `host` (any port) or `host:port`, lower case; empty: webhooks refused. */
  readonly allowHosts: readonly string[];
  readonly secretFor: (owner: string) => string | undefined;
  readonly retryForMs: number;
  readonly retryBaseMs: number;
}

export const WEBHOOK_TASK = 'webhooks';
const TICK_MS = 250;
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A claim outlives one attempt, so no other gateway sends the same delivery meanwhile. */
const LEASE_MS = ATTEMPT_TIMEOUT_MS + 20_000;
const PARALLEL = 16;
const ORPHAN_AGE_MS = 60_000;

/** `sha256=<hex>` of `<timestamp>.<body>`: what a receiver recomputes to check a delivery. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** The delay before attempt `n + 1` after `n` failed ones. */
export function backoffMs(base: number, failedAttempts: number): number {
  return base * 2 ** Math.max(0, failedAttempts - 1);
}

export class Webhooks {
  private readonly abort = new AbortController();

  constructor(
    private readonly store: JobStore,
    private readonly control: ControlStore,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
  ) {}

  /** Refuses a callback_url the gateway may not call (400), at submit. */
  check(owner: string, raw: string): void {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ApiError('INVALID_CALLBACK_URL', `Field 'callback_url' is not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
      throw new ApiError('INVALID_CALLBACK_URL', "Field 'callback_url' must be an http:// or https:// URL without credentials");
    }
    const { allowHosts } = this.settings;
    if (allowHosts.length === 0) {
      throw new ApiError('WEBHOOK_NOT_ALLOWED', 'Webhooks are off on this gateway: start it with --webhook-allow-hosts <host[:port],...> naming the hosts callbacks may go to');
    }
    const host = url.host.toLowerCase();
    const hostname = url.hostname.toLowerCase();
    if (!allowHosts.includes(host) && !allowHosts.includes(hostname)) {
      throw new ApiError('WEBHOOK_NOT_ALLOWED', `callback_url host '${host}' is not in --webhook-allow-hosts (${allowHosts.join(', ')})`);
    }
    if (this.settings.secretFor(owner) === undefined) {
      throw new ApiError('WEBHOOK_NOT_ALLOWED', 'No webhook secret to sign callbacks with: set --webhook-secret, or webhook_secret=<secret> on this key in the keys file');
    }
  }

  /** The webhook record a new job starts with. */
  static waiting(jobId: string, owner: string, url: string, now: number): Webhook {
    return { jobId, owner, url, state: 'waiting', attempts: [], nextAttemptAt: 0, firstAttemptAt: null, createdAt: now };
  }

  start(tasks: BackgroundTasks): void {
    tasks.every(WEBHOOK_TASK, TICK_MS, () => this.tick());
  }

  /** Aborts attempts in flight (they are released, not recorded) before the tasks stop. */
  stop(): void {
    this.abort.abort();
  }

  async tick(): Promise<void> {
    const due: Webhook[] = [];
    const now = Date.now();
    for (const w of await this.control.openWebhooks(1000)) {
      if (w.state === 'waiting') {
        const status = await this.store.status(w.jobId);
        if (status === undefined) {
          if (w.createdAt < now - ORPHAN_AGE_MS) await this.control.deleteControl(w.jobId);
          continue;
        }
        if (!isTerminal(status)) continue;
      } else if (w.nextAttemptAt > now) continue;
      const claimed = await this.control.claimWebhook(w.jobId, now, now + LEASE_MS);
      if (claimed) due.push(claimed);
    }
    for (let i = 0; i < due.length; i += PARALLEL) await Promise.all(due.slice(i, i + PARALLEL).map((w) => this.attempt(w)));
  }

  private async attempt(webhook: Webhook): Promise<void> {
    const job = await this.store.get(ADMIN_SCOPE, webhook.jobId);
    if (!job) return this.control.deleteControl(webhook.jobId);
    const view = statusView(job, Date.now());
    const body = JSON.stringify({ job_id: job.id, status: job.status, progress: view.progress, completed_at: isoTime(job.completedAt) });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const secret = this.settings.secretFor(webhook.owner) ?? '';
    const at = Date.now();
    let attempt: WebhookAttempt;
    try {
      const response = await fetch(webhook.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'sollol-webhook',
          'x-sollol-timestamp': timestamp,
          'x-sollol-signature': webhookSignature(secret, timestamp, body),
        },
        body,
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
      });
      await response.body?.cancel().catch(() => {});
      attempt = { at, statusCode: response.status };
    } catch (error) {
      if (this.abort.signal.aborted) {
        // Stopping: give the delivery back at once, unrecorded, for the next start (or another gateway).
        await this.control.putWebhook({ ...webhook, nextAttemptAt: at });
        return;
      }
      attempt = { at, statusCode: null, error: error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error) };
    }
    const attempts = [...webhook.attempts, attempt];
    const first = webhook.firstAttemptAt ?? at;
    const ok = attempt.statusCode !== null && attempt.statusCode >= 200 && attempt.statusCode < 300;
    const next = at + backoffMs(this.settings.retryBaseMs, attempts.length);
    const state: Webhook['state'] = ok ? 'delivered' : next - first > this.settings.retryForMs ? 'failed' : 'retrying';
    await this.control.putWebhook({ ...webhook, state, attempts, firstAttemptAt: first, nextAttemptAt: ok ? at : next });
    if (state === 'failed') this.log.warn({ job_id: job.id, attempts: attempts.length }, 'webhook given up');
    else if (!ok) this.log.info({ job_id: job.id, attempt: attempts.length, status_code: attempt.statusCode, error: attempt.error }, 'webhook attempt failed; will retry');
  }
}

/** The webhook as the job's status shows it. */
export function webhookView(webhook: Webhook | undefined): { callback_url: string; webhook: { state: string; attempts: { at: string; status_code: number | null; error?: string }[] } } | Record<string, never> {
  if (!webhook) return {};
  return {
    callback_url: webhook.url,
    webhook: {
      state: webhook.state,
      attempts: webhook.attempts.map((a) => ({ at: isoTime(a.at)!, status_code: a.statusCode, ...(a.error ? { error: a.error } : {}) })),
    },
  };
}
