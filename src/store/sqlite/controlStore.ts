/**
 * The job-control port (store/control.ts) on the embedded store's SQLite file: tables of
 * migration 5. Every write goes through the job store's write path (SqliteJobStore.transact:
 * the WAL's back-pressure, IMMEDIATE transactions, faults classified, the full-disk rules);
 * reads are classified like the job store's.
 */
import type { Database as DB, Statement } from 'better-sqlite3';
import type { Priority } from '../../jobs/priority.js';
import type { FilledDocument } from '../../jobs/itemFields.js';
import { classified } from './faults.js';
import { DOC_FAILED, DOC_PENDING } from './rows.js';
import type { WriteKind } from './sqliteStore.js';
import type { AutobatchEntry, AutobatchFlush, ControlStore, DocumentsFrom, IdempotentAnswer, JobControl, Template, Webhook, WebhookAttempt } from '../control.js';

interface TemplateRow {
  body: string;
  next_run_at: number | null;
}

const templateFromRow = (row: TemplateRow): Template => ({ ...(JSON.parse(row.body) as Template), nextRunAt: row.next_run_at });

interface QueueRow {
  owner: string;
  target: string;
  documents: string;
  metadata: string | null;
  queued_at: number;
}

interface FlushRow {
  owner: string;
  target: string;
  job_ids: string;
  documents: number;
  flushed_at: number;
}

interface WebhookRow {
  job_id: string;
  owner: string;
  url: string;
  state: string;
  attempts: string;
  next_attempt_at: number;
  first_attempt_at: number | null;
  created_at: number;
}

function webhookFromRow(row: WebhookRow): Webhook {
  return {
    jobId: row.job_id,
    owner: row.owner,
    url: row.url,
    state: row.state as Webhook['state'],
    attempts: JSON.parse(row.attempts) as WebhookAttempt[],
    nextAttemptAt: row.next_attempt_at,
    firstAttemptAt: row.first_attempt_at,
    createdAt: row.created_at,
  };
}

interface ControlRow {
  job_id: string;
  owner: string;
  priority: string;
  run_at: number | null;
  depends_on: string;
  documents_from: string | null;
  template: string | null;
  created_at: number;
}

interface AnswerRow {
  fingerprint: string;
  status_code: number;
  body: string;
  expires_at: number;
}

/** The job store's write path on the same file (SqliteJobStore): its connection and `transact`. */
export interface SqliteWritePath {
  readonly database: DB;
  transact<T>(kind: WriteKind, fn: () => T): Promise<T>;
}

export class SqliteControlStore implements ControlStore {
  private readonly stmt: ReturnType<typeof prepare>;

  constructor(private readonly writes: SqliteWritePath) {
    this.stmt = prepare(writes.database);
  }

  /** Adding rows: refused on a full disk. */
  private grow<T>(fn: () => T): Promise<T> {
    return this.writes.transact('grow', fn);
  }

  /** Deleting or updating in place: goes on on a full disk. */
  private free<T>(fn: () => T): Promise<T> {
    return this.writes.transact('free', fn);
  }

  putControl(c: JobControl): Promise<void> {
    return this.grow(() => void this.stmt.putControl.run({
      job_id: c.jobId,
      owner: c.owner,
      priority: c.priority,
      run_at: c.runAt,
      depends_on: JSON.stringify(c.dependsOn),
      documents_from: c.documentsFrom ? JSON.stringify(c.documentsFrom) : null,
      template: c.template,
      created_at: c.createdAt,
    }));
  }

  async controls(jobIds: readonly string[]): Promise<Map<string, JobControl>> {
    return classified(() => {
      const out = new Map<string, JobControl>();
      for (const id of jobIds) {
        const row = this.stmt.getControl.get(id) as ControlRow | undefined;
        if (row) out.set(id, fromRow(row));
      }
      return out;
    });
  }

  setPriority(jobId: string, priority: Priority): Promise<boolean> {
    return this.free(() => this.stmt.setPriority.run(priority, jobId).changes > 0);
  }

  deleteControl(jobId: string): Promise<void> {
    return this.free(() => {
      this.stmt.deleteControl.run(jobId);
      this.stmt.deleteWebhook.run(jobId);
    });
  }

  async controlledJobIds(): Promise<string[]> {
    return classified(() => (this.stmt.controlIds.all() as { job_id: string }[]).map((r) => r.job_id));
  }

  putWebhook(w: Webhook): Promise<void> {
    return this.grow(() => void this.stmt.putWebhook.run({
      job_id: w.jobId, owner: w.owner, url: w.url, state: w.state, attempts: JSON.stringify(w.attempts),
      next_attempt_at: w.nextAttemptAt, first_attempt_at: w.firstAttemptAt, created_at: w.createdAt,
    }));
  }

  async webhooks(jobIds: readonly string[]): Promise<Map<string, Webhook>> {
    return classified(() => {
      const out = new Map<string, Webhook>();
      for (const id of jobIds) {
        const row = this.stmt.getWebhook.get(id) as WebhookRow | undefined;
        if (row) out.set(id, webhookFromRow(row));
      }
      return out;
    });
  }

  async openWebhooks(limit: number): Promise<Webhook[]> {
    return classified(() => (this.stmt.openWebhooks.all(limit) as WebhookRow[]).map(webhookFromRow));
  }

  claimWebhook(jobId: string, now: number, leaseUntil: number): Promise<Webhook | undefined> {
    return this.free((): Webhook | undefined => {
      const changed = this.stmt.claimWebhook.run(leaseUntil, jobId, now).changes;
      if (changed === 0) return undefined;
      return webhookFromRow(this.stmt.getWebhook.get(jobId) as WebhookRow);
    });
  }

  fillScheduledDocuments(jobId: string, documents: readonly FilledDocument[]): Promise<boolean> {
    return this.grow((): boolean => {
      const job = this.stmt.jobForFill.get(jobId) as { seq: number; status: string; total_items: number } | undefined;
      if (!job || job.status !== 'scheduled' || job.total_items !== 0) return false;
      let failed = 0;
      documents.forEach((doc, idx) => {
        if ('text' in doc) this.stmt.fillPending.run(job.seq, idx, doc.text);
        else {
          this.stmt.fillFailed.run(job.seq, idx, doc.code, doc.error);
          failed++;
        }
      });
      this.stmt.fillTotals.run(documents.length, failed, job.seq);
      return true;
    });
  }

  putTemplate(t: Template): Promise<boolean> {
    const { nextRunAt, ...body } = t;
    return this.grow(() => this.stmt.putTemplate.run(t.owner, t.name, JSON.stringify(body), nextRunAt).changes > 0);
  }

  async templates(owner: string | null): Promise<Template[]> {
    return classified(() => (this.stmt.templates.all({ owner }) as TemplateRow[]).map(templateFromRow));
  }

  async template(owner: string, name: string): Promise<Template | undefined> {
    const row = classified(() => this.stmt.template.get(owner, name) as TemplateRow | undefined);
    return row ? templateFromRow(row) : undefined;
  }

  deleteTemplate(owner: string, name: string): Promise<boolean> {
    return this.free(() => this.stmt.deleteTemplate.run(owner, name).changes > 0);
  }

  async dueTemplates(now: number): Promise<Template[]> {
    return classified(() => (this.stmt.dueTemplates.all(now) as TemplateRow[]).map(templateFromRow));
  }

  advanceTemplate(owner: string, name: string, expected: number, next: number | null): Promise<boolean> {
    return this.free(() => this.stmt.advanceTemplate.run(next, owner, name, expected).changes > 0);
  }

  queueAutobatch(e: AutobatchEntry): Promise<void> {
    return this.grow(() => void this.stmt.queueAutobatch.run(e.owner, e.target, JSON.stringify(e.documents), e.documents.length, e.metadata ? JSON.stringify(e.metadata) : null, e.queuedAt));
  }

  async autobatchQueued(owner: string | null): Promise<{ owner: string; target: string; documents: number; oldestAt: number }[]> {
    return classified(() => (this.stmt.autobatchQueued.all({ owner }) as { owner: string; target: string; documents: number; oldest_at: number }[]).map((r) => ({
      owner: r.owner, target: r.target, documents: r.documents, oldestAt: r.oldest_at,
    })));
  }

  takeAutobatch(owner: string, target: string, before: number): Promise<AutobatchEntry[]> {
    return this.free((): AutobatchEntry[] => {
      const rows = this.stmt.autobatchEntries.all(owner, target, before) as QueueRow[];
      this.stmt.deleteAutobatchEntries.run(owner, target, before);
      return rows.map((r) => ({
        owner: r.owner, target: r.target, documents: JSON.parse(r.documents) as string[],
        metadata: r.metadata ? (JSON.parse(r.metadata) as Record<string, unknown>) : null, queuedAt: r.queued_at,
      }));
    });
  }

  addAutobatchFlush(f: AutobatchFlush): Promise<void> {
    return this.grow(() => void this.stmt.addFlush.run(f.owner, f.target, JSON.stringify(f.jobIds), f.documents, f.flushedAt));
  }

  async autobatchHistory(owner: string | null, limit: number): Promise<AutobatchFlush[]> {
    return classified(() => (this.stmt.history.all({ owner, limit }) as FlushRow[]).map((r) => ({
      owner: r.owner, target: r.target, jobIds: JSON.parse(r.job_ids) as string[], documents: r.documents, flushedAt: r.flushed_at,
    })));
  }

  async idempotentAnswer(owner: string, key: string, now: number): Promise<IdempotentAnswer | undefined> {
    const row = classified(() => this.stmt.getAnswer.get(owner, key) as AnswerRow | undefined);
    return row && row.expires_at > now ? answerFromRow(row) : undefined;
  }

  keepIdempotentAnswer(owner: string, key: string, answer: IdempotentAnswer, now: number): Promise<IdempotentAnswer> {
    return this.grow((): IdempotentAnswer => {
      const row = this.stmt.getAnswer.get(owner, key) as AnswerRow | undefined;
      if (row && row.expires_at > now && row.status_code !== 0) return answerFromRow(row);
      this.stmt.putAnswer.run(owner, key, answer.fingerprint, answer.statusCode, answer.body, answer.expiresAt);
      return answer;
    });
  }

  reserveIdempotency(owner: string, key: string, fingerprint: string, now: number, leaseUntil: number): Promise<IdempotentAnswer | 'reserved'> {
    return this.grow((): IdempotentAnswer | 'reserved' => {
      const row = this.stmt.getAnswer.get(owner, key) as AnswerRow | undefined;
      if (row && row.expires_at > now) return answerFromRow(row);
      this.stmt.putAnswer.run(owner, key, fingerprint, 0, '', leaseUntil);
      return 'reserved';
    });
  }

  releaseIdempotency(owner: string, key: string, fingerprint: string): Promise<void> {
    return this.free(() => void this.stmt.releaseAnswer.run(owner, key, fingerprint));
  }

  sweepIdempotency(now: number): Promise<number> {
    return this.free(() => this.stmt.sweepAnswers.run(now).changes);
  }

  releaseDeadReservations(): Promise<number> {
    return this.free(() => this.stmt.releaseReservations.run().changes);
  }
}

function fromRow(row: ControlRow): JobControl {
  return {
    jobId: row.job_id,
    owner: row.owner,
    priority: row.priority as Priority,
    runAt: row.run_at,
    dependsOn: JSON.parse(row.depends_on) as string[],
    documentsFrom: row.documents_from ? (JSON.parse(row.documents_from) as DocumentsFrom) : null,
    template: row.template,
    createdAt: row.created_at,
  };
}

function answerFromRow(row: AnswerRow): IdempotentAnswer {
  return { fingerprint: row.fingerprint, statusCode: row.status_code, body: row.body, expiresAt: row.expires_at };
}

function prepare(db: DB) {
  const s = (sql: string): Statement => db.prepare(sql);
  return {
    putControl: s(`INSERT OR REPLACE INTO job_control (job_id, owner, priority, run_at, depends_on, documents_from, template, created_at)
                   VALUES (@job_id, @owner, @priority, @run_at, @depends_on, @documents_from, @template, @created_at)`),
    getControl: s(`SELECT * FROM job_control WHERE job_id = ?`),
    setPriority: s(`UPDATE job_control SET priority = ? WHERE job_id = ?`),
    deleteControl: s(`DELETE FROM job_control WHERE job_id = ?`),
    controlIds: s(`SELECT job_id FROM job_control`),
    getAnswer: s(`SELECT fingerprint, status_code, body, expires_at FROM idempotency_keys WHERE owner = ? AND key = ?`),
    putAnswer: s(`INSERT OR REPLACE INTO idempotency_keys (owner, key, fingerprint, status_code, body, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
    sweepAnswers: s(`DELETE FROM idempotency_keys WHERE expires_at <= ?`),
    // A reservation is a row without an answer yet (status_code 0).
    releaseReservations: s(`DELETE FROM idempotency_keys WHERE status_code = 0`),
    releaseAnswer: s(`DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND fingerprint = ? AND status_code = 0`),
    putWebhook: s(`INSERT OR REPLACE INTO webhooks (job_id, owner, url, state, attempts, next_attempt_at, first_attempt_at, created_at)
                   VALUES (@job_id, @owner, @url, @state, @attempts, @next_attempt_at, @first_attempt_at, @created_at)`),
    getWebhook: s(`SELECT * FROM webhooks WHERE job_id = ?`),
    deleteWebhook: s(`DELETE FROM webhooks WHERE job_id = ?`),
    jobForFill: s(`SELECT seq, status, total_items FROM jobs WHERE id = ?`),
    fillPending: s(`INSERT INTO documents (job_seq, idx, state, text) VALUES (?, ?, ${DOC_PENDING}, ?)`),
    fillFailed: s(`INSERT INTO documents (job_seq, idx, state, code, error) VALUES (?, ?, ${DOC_FAILED}, ?, ?)`),
    fillTotals: s(`UPDATE jobs SET total_items = ?, failed_items = failed_items + ? WHERE seq = ?`),
    putTemplate: s(`INSERT OR IGNORE INTO templates (owner, name, body, next_run_at) VALUES (?, ?, ?, ?)`),
    templates: s(`SELECT body, next_run_at FROM templates WHERE (@owner IS NULL OR owner = @owner) ORDER BY name, owner`),
    template: s(`SELECT body, next_run_at FROM templates WHERE owner = ? AND name = ?`),
    deleteTemplate: s(`DELETE FROM templates WHERE owner = ? AND name = ?`),
    dueTemplates: s(`SELECT body, next_run_at FROM templates WHERE next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at`),
    advanceTemplate: s(`UPDATE templates SET next_run_at = ? WHERE owner = ? AND name = ? AND next_run_at = ?`),
    queueAutobatch: s(`INSERT INTO autobatch_queue (owner, target, documents, count, metadata, queued_at) VALUES (?, ?, ?, ?, ?, ?)`),
    autobatchQueued: s(`SELECT owner, target, SUM(count) AS documents, MIN(queued_at) AS oldest_at FROM autobatch_queue
                        WHERE (@owner IS NULL OR owner = @owner) GROUP BY owner, target ORDER BY owner, target`),
    autobatchEntries: s(`SELECT owner, target, documents, metadata, queued_at FROM autobatch_queue
                         WHERE owner = ? AND target = ? AND queued_at < ? ORDER BY seq`),
    deleteAutobatchEntries: s(`DELETE FROM autobatch_queue WHERE owner = ? AND target = ? AND queued_at < ?`),
    addFlush: s(`INSERT INTO autobatch_history (owner, target, job_ids, documents, flushed_at) VALUES (?, ?, ?, ?, ?)`),
    history: s(`SELECT owner, target, job_ids, documents, flushed_at FROM autobatch_history
                WHERE (@owner IS NULL OR owner = @owner) ORDER BY seq DESC LIMIT @limit`),
    openWebhooks: s(`SELECT * FROM webhooks WHERE state IN ('waiting', 'retrying') ORDER BY created_at LIMIT ?`),
    claimWebhook: s(`UPDATE webhooks SET next_attempt_at = ? WHERE job_id = ? AND state IN ('waiting', 'retrying') AND next_attempt_at <= ?`),
  };
}
