/**
 * The OpenAI Batch API's batches on the job core (docs/ARCHITECTURE.md, "OpenAI Batch API"):
 * `create` validates the input file for the endpoint and submits one job per group of lines
 * (plan.ts) through the job manager, so admission, keys, the scheduler, the pool, cancel, TTL,
 * resume after a crash and distributed mode are the jobs'. A background finaliser (a tracked
 * timer in every gateway) moves batches on from the store: when every job of a batch is
 * terminal it writes the output and error files and the final status. Every step is a
 * compare-and-set on the batch's status and every file id, line id and body is derived from the
 * batch and the line, so a finaliser that dies half-way (kill -9) and the next one, or two
 * gateways finalising at once, write the same files and agree on one final status.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { JobManager } from '../jobs/manager.js';
import { ADMIN_SCOPE, type ItemResult, type JobRecord, type Scope } from '../jobs/model.js';
import { isTerminal } from '../jobs/state.js';
import type { Logger } from '../logger.js';
import type { FileStore, FileWriter } from '../store/files/types.js';
import type { BatchJobRef, BatchPatch, BatchStore, StoredBatch } from './batchStore.js';
import { BATCH_ENDPOINTS, MAX_REPORTED_ERRORS, validateInputFile, type BatchEndpoint, type BatchLineError, type BatchRequestLine } from './inputFile.js';
import type { BatchStatus } from './objects.js';
import { outputLine } from './objects.js';
import { lineOutcome, MAX_BATCH_GROUPS, MAX_BATCH_JOBS, MAX_EMBEDDING_INPUTS, partsFromRefs, planGroups, splitGroups, type PlannedGroup } from './plan.js';

export const COMPLETION_WINDOWS = ['24h'] as const;
const WINDOW_MS = 24 * 3600 * 1000;
export const FINALISER_INTERVAL_MS = 250;
const RESULT_PAGE = 1000;
/** A batch still `validating` this long after it was created lost the request that was starting it. */
const LAUNCH_GRACE_MS = 30_000;

export interface CreateBatch {
  readonly input_file_id: string;
  readonly endpoint: string;
  readonly completion_window: string;
  readonly metadata?: Record<string, string> | null;
}

/** HTTP status and OpenAI error body a failed line carries, as the sync route would answer it. */
const LINE_STATUS: Readonly<Record<string, number>> = { MODEL_NOT_FOUND: 404, INPUT_REJECTED: 400, BACKEND_TIMEOUT: 504, BACKEND_UNAVAILABLE: 503, GATEWAY_RESTARTED: 503, TOO_MANY_JOBS: 429, TOO_MANY_ACTIVE_JOBS: 429, STORE_FULL: 507 };

function hash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 24);
}

/** A line with more inputs than one job takes: the batch fails validation with it. */
function lineTooBig(line: BatchRequestLine, items: number, maxItems: number): BatchLineError {
  return { code: 'too_many_items', message: `The line ${JSON.stringify(line.customId).slice(0, 100)} holds ${items} inputs; one job takes at most ${maxItems} (--max-batch-documents)`, param: 'body.input', line: line.line };
}

/** A chat/completion body's `id` made stable (a re-run finaliser writes the same file). */
function stableBody(body: Record<string, unknown>, seed: string): Record<string, unknown> {
  if (typeof body.id !== 'string') return body;
  const prefix = body.id.split('-')[0]!;
  return { ...body, id: `${prefix}-${seed}` };
}

/**
 * A job's results read forward a page at a time: `range` gives items [start, end) of ranges
 * asked in increasing order, and forgets those before `start`.
 */
class ResultCursor {
  private base = 0;
  private items: ItemResult[] = [];

  constructor(
    private readonly page: (offset: number, limit: number) => Promise<ItemResult[]>,
    private readonly total: number,
  ) {}

  async range(start: number, end: number): Promise<ItemResult[]> {
    const until = Math.min(end, this.total);
    if (start < this.base || start >= this.base + this.items.length) {
      // Nothing held is wanted (or a range before them: read again).
      this.base = start;
      this.items = [];
    } else if (this.base + this.items.length < until) {
      // A page is needed: the items before `start` are not asked for again.
      this.items = this.items.slice(start - this.base);
      this.base = start;
    }
    while (this.base + this.items.length < until) {
      const got = await this.page(this.base + this.items.length, RESULT_PAGE);
      if (got.length === 0) break;
      for (const item of got) this.items.push(item);
    }
    return this.items.slice(start - this.base, end - this.base);
  }
}

/** Bytes of output lines gathered before they go to the file store as one chunk. */
const FILE_CHUNK_BYTES = 4 << 20;

/**
 * A batch's output or error lines, written to the file store a chunk at a time as they come
 * (a batch's output can be hundreds of MB: once joined into one string, longer than V8 makes).
 * The writer is opened with the first chunk (a batch without errors leaves no error file behind,
 * nor a Redis writer entry); without one (the file was written by an earlier finaliser) the
 * lines are only counted.
 */
class LineSink {
  private block: string[] = [];
  private blockBytes = 0;
  private writer: Promise<FileWriter> | undefined;
  count = 0;

  constructor(private readonly open: (() => Promise<FileWriter>) | undefined) {}

  async add(line: string): Promise<void> {
    this.count++;
    if (!this.open) return;
    this.block.push(line, '\n');
    this.blockBytes += line.length + 1;
    if (this.blockBytes >= FILE_CHUNK_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.block.length === 0 || !this.open) return;
    const chunk = Buffer.from(this.block.join(''));
    this.block = [];
    this.blockBytes = 0;
    this.writer ??= this.open();
    await (await this.writer).append(chunk);
  }

  /** Commits the file (when this sink writes one). */
  async commit(): Promise<void> {
    if (!this.open) return;
    await this.flush();
    this.writer ??= this.open();
    await (await this.writer).commit();
  }
}

export class BatchService {
  private timer: NodeJS.Timeout | undefined;
  private tick: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly batches: BatchStore,
    private readonly files: FileStore,
    private readonly manager: JobManager,
    private readonly log: Logger,
    /** Most items one job may have (`--max-batch-documents`): a group with more is cut into several jobs (plan.ts, splitGroups). */
    private readonly maxItemsPerJob: number,
    private readonly intervalMs = FINALISER_INTERVAL_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.tick || this.stopped) return;
      this.tick = this.advanceAll()
        .catch((error: unknown) => this.log.error({ err: error }, 'batch finaliser pass failed'))
        .finally(() => (this.tick = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the finaliser and waits for a pass in progress (bounded by its store calls). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.tick;
  }

  async create(scope: Scope, request: CreateBatch): Promise<StoredBatch> {
    if (!(BATCH_ENDPOINTS as readonly string[]).includes(request.endpoint)) {
      throw new ApiError('INVALID_BODY', `endpoint must be one of ${BATCH_ENDPOINTS.join(', ')}; got ${JSON.stringify(request.endpoint).slice(0, 100)}`);
    }
    if (!(COMPLETION_WINDOWS as readonly string[]).includes(request.completion_window)) {
      throw new ApiError('INVALID_BODY', `completion_window must be "24h"; got ${JSON.stringify(request.completion_window).slice(0, 100)}`);
    }
    const endpoint = request.endpoint as BatchEndpoint;
    const file = await this.files.get(scope, request.input_file_id);
    if (!file) throw new ApiError('FILE_NOT_FOUND', `No such file object: ${request.input_file_id.slice(0, 80)}`);
    if (file.purpose !== 'batch') throw new ApiError('INVALID_FILE', `File ${file.id} has purpose '${file.purpose}'; a batch's input file must have purpose 'batch'`);
    const now = Date.now();
    const base: StoredBatch = {
      id: `batch_${randomBytes(12).toString('hex')}`,
      owner: scope.owner ?? 'admin',
      endpoint,
      inputFileId: file.id,
      completionWindow: request.completion_window,
      status: 'validating',
      metadata: request.metadata ?? null,
      errors: [],
      outputFileId: null,
      errorFileId: null,
      times: { created: now, expires: now + WINDOW_MS },
      counts: { total: 0, completed: 0, failed: 0 },
      jobs: [],
    };
    const content = await this.files.content(scope, file.id);
    const verdict = content ? validateInputFile(content, endpoint) : { ok: false as const, errors: [{ code: 'invalid_file', message: 'The input file has no content', param: null, line: null }] };
    if (!verdict.ok) return this.putFailed(base, verdict.errors);
    const groups = planGroups(endpoint, verdict.requests);
    if (groups.length > MAX_BATCH_GROUPS) {
      return this.putFailed(base, [{ code: 'too_many_models', message: `The file's lines name ${groups.length} different models (or embedding dimensions); one batch may use at most ${MAX_BATCH_GROUPS}`, param: 'body.model', line: null }]);
    }
    const inputs = groups.reduce((sum, g) => sum + g.documents.length, 0);
    if (endpoint === '/v1/embeddings' && inputs > MAX_EMBEDDING_INPUTS) {
      return this.putFailed(base, [{ code: 'too_many_items', message: `The file's lines hold ${inputs} embedding inputs; an embeddings batch may hold at most ${MAX_EMBEDDING_INPUTS}`, param: 'body.input', line: null }]);
    }
    const parts = splitGroups(groups, this.maxItemsPerJob);
    if ('tooBig' in parts) {
      return this.putFailed(base, [lineTooBig(parts.tooBig, parts.items, this.maxItemsPerJob)]);
    }
    if (parts.length > MAX_BATCH_JOBS) {
      return this.putFailed(base, [{ code: 'too_many_items', message: `The file's lines hold ${inputs} items (inputs), ${parts.length} jobs of at most ${this.maxItemsPerJob} (--max-batch-documents); one batch may make at most ${MAX_BATCH_JOBS}`, param: 'body.input', line: null }]);
    }
    const batch: StoredBatch = { ...base, counts: { total: verdict.requests.length, completed: 0, failed: 0 } };
    await this.batches.put(batch);
    return (await this.launch(batch, parts)) ?? batch;
  }

  private async putFailed(base: StoredBatch, errors: readonly BatchLineError[]): Promise<StoredBatch> {
    const failed: StoredBatch = { ...base, status: 'failed', errors: errors.slice(0, MAX_REPORTED_ERRORS), times: { ...base.times, failed: Date.now() } };
    await this.batches.put(failed);
    this.log.info({ batch_id: failed.id, errors: errors.length }, 'batch failed validation');
    return failed;
  }

  /** Submits the groups' jobs and moves the batch to in_progress (or failed when no job could be admitted). */
  private async launch(batch: StoredBatch, groups: readonly PlannedGroup[]): Promise<StoredBatch | undefined> {
    const scope: Scope = { kind: 'owner', owner: batch.owner };
    const jobs: BatchJobRef[] = [];
    for (const group of groups) {
      const ref = { group: group.key, lines: group.lines.length, items: group.documents.length };
      try {
        const answer = await this.manager.submit(scope, {
          model: group.model,
          documents: group.documents,
          type: group.type,
          metadata: { openai_batch: batch.id },
          options: { truncate: true, ...(group.dimensions === undefined ? {} : { dimensions: group.dimensions }) },
        });
        jobs.push({ ...ref, jobId: answer.job_id });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === 'MODEL_NOT_FOUND') {
          jobs.push({ ...ref, jobId: null, error: { code: error.code, message: error.message } });
          continue;
        }
        // Admission refused (too many jobs, the store's cap): the batch fails as a whole, its jobs cancelled.
        for (const job of jobs) if (job.jobId) await this.cancelJob(job.jobId);
        this.log.warn({ batch_id: batch.id, code: error.code }, `batch could not start: ${error.message}`);
        return this.batches.update(batch.id, ['validating'], {
          status: 'failed',
          errors: [{ code: error.code.toLowerCase(), message: error.message, param: null, line: null }],
          times: { failed: Date.now() },
        });
      }
    }
    const started = await this.batches.update(batch.id, ['validating'], { status: 'in_progress', jobs, times: { in_progress: Date.now() } });
    if (!started) {
      // Cancelled meanwhile (or another gateway started it first): these jobs are nobody's.
      for (const job of jobs) if (job.jobId) await this.cancelJob(job.jobId);
      return this.batches.get(ADMIN_SCOPE, batch.id);
    }
    this.log.info({ batch_id: batch.id, jobs: jobs.map((j) => j.jobId), lines: batch.counts.total }, 'batch started');
    return started;
  }

  async get(scope: Scope, id: string): Promise<StoredBatch> {
    const batch = await this.batches.get(scope, id);
    if (!batch) throw new ApiError('BATCH_NOT_FOUND', `No such batch: ${id.slice(0, 80)}`);
    return batch.status === 'in_progress' || batch.status === 'cancelling' ? this.withLiveCounts(batch) : batch;
  }

  /** request_counts while running: the jobs' progress, for groups whose lines are one item each. */
  private async withLiveCounts(batch: StoredBatch): Promise<StoredBatch> {
    let completed = 0;
    let failed = 0;
    for (const ref of batch.jobs) {
      if (ref.jobId === null) {
        failed += ref.lines;
        continue;
      }
      if (ref.lines !== ref.items) continue;
      const job = await this.jobOf(ref.jobId);
      if (job) {
        completed += job.completedItems;
        failed += job.failedItems;
      }
    }
    return { ...batch, counts: { total: batch.counts.total, completed, failed } };
  }

  list(scope: Scope, query: { limit: number; after?: string }): Promise<{ batches: StoredBatch[]; hasMore: boolean }> {
    return this.batches.list(scope, query);
  }

  /** in_progress (or validating) -> cancelling; the finaliser ends it as cancelled once the jobs stopped. */
  async cancel(scope: Scope, id: string): Promise<StoredBatch> {
    const batch = await this.get(scope, id);
    if (batch.status === 'cancelling' || batch.status === 'cancelled') return batch;
    const updated = await this.batches.update(batch.id, ['validating', 'in_progress'], { status: 'cancelling', times: { cancelling: Date.now() } });
    if (!updated) {
      const now = await this.get(scope, id);
      if (now.status === 'cancelling' || now.status === 'cancelled') return now;
      throw new ApiError('BATCH_NOT_CANCELLABLE', `Batch ${batch.id} is ${now.status} and cannot be cancelled`);
    }
    for (const ref of updated.jobs) if (ref.jobId) await this.cancelJob(ref.jobId);
    this.log.info({ batch_id: batch.id }, 'batch cancelling');
    return this.withLiveCounts(updated);
  }

  private async cancelJob(jobId: string): Promise<void> {
    try {
      await this.manager.cancel(ADMIN_SCOPE, jobId);
    } catch (error) {
      // Already terminal or expired: nothing to stop.
      if (!(error instanceof ApiError)) throw error;
    }
  }

  private async jobOf(jobId: string): Promise<JobRecord | undefined> {
    try {
      return await this.manager.job(ADMIN_SCOPE, jobId);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'JOB_NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** One finaliser pass over every unfinished batch (any gateway may run it: every step is a compare-and-set). */
  async advanceAll(): Promise<void> {
    for (const batch of await this.batches.unfinished()) {
      if (this.stopped) return;
      try {
        await this.advance(batch);
      } catch (error) {
        this.log.error({ batch_id: batch.id, err: error }, 'batch finaliser step failed; it is retried on the next pass');
      }
    }
  }

  private async advance(batch: StoredBatch): Promise<void> {
    const now = Date.now();
    if (batch.status === 'validating') {
      // A gateway died between storing the batch and starting its jobs: start them again. A
      // younger batch is still being started by the request that created it.
      if (now - (batch.times.created ?? 0) < LAUNCH_GRACE_MS) return;
      const content = await this.files.content(ADMIN_SCOPE, batch.inputFileId);
      const verdict = content ? validateInputFile(content, batch.endpoint as BatchEndpoint) : undefined;
      if (!verdict?.ok) {
        await this.batches.update(batch.id, ['validating'], { status: 'failed', errors: verdict && !verdict.ok ? verdict.errors.slice(0, MAX_REPORTED_ERRORS) : [{ code: 'invalid_file', message: 'The input file is gone', param: null, line: null }], times: { failed: now } });
        return;
      }
      const parts = splitGroups(planGroups(batch.endpoint as BatchEndpoint, verdict.requests), this.maxItemsPerJob);
      if ('tooBig' in parts) {
        await this.batches.update(batch.id, ['validating'], { status: 'failed', errors: [lineTooBig(parts.tooBig, parts.items, this.maxItemsPerJob)], times: { failed: now } });
        return;
      }
      await this.launch(batch, parts);
      return;
    }
    if (batch.status === 'in_progress' && now >= (batch.times.expires ?? Infinity)) {
      const expiring = await this.batches.update(batch.id, ['in_progress'], { status: 'finalizing', ending: 'expired', times: { finalizing: now } });
      if (expiring) for (const ref of expiring.jobs) if (ref.jobId) await this.cancelJob(ref.jobId);
      return;
    }
    if (batch.status === 'cancelling') {
      for (const ref of batch.jobs) if (ref.jobId) await this.cancelJob(ref.jobId);
    }
    if (!(await this.jobsSettled(batch))) return;
    if (batch.status === 'in_progress') {
      const finalizing = await this.batches.update(batch.id, ['in_progress'], { status: 'finalizing', times: { finalizing: now } });
      if (finalizing) await this.finalize(finalizing);
      return;
    }
    await this.finalize(batch);
  }

  private async jobsSettled(batch: StoredBatch): Promise<boolean> {
    for (const ref of batch.jobs) {
      if (ref.jobId === null) continue;
      const job = await this.jobOf(ref.jobId);
      if (job && !isTerminal(job.status)) return false;
    }
    return true;
  }

  /** Writes the output and error files and the final status (finalizing -> completed/expired, cancelling -> cancelled). */
  private async finalize(batch: StoredBatch): Promise<void> {
    const from: BatchStatus = batch.status;
    const target: BatchStatus = from === 'cancelling' ? 'cancelled' : (batch.ending ?? 'completed');
    const endpoint = batch.endpoint as BatchEndpoint;
    const content = await this.files.content(ADMIN_SCOPE, batch.inputFileId);
    const verdict = content ? validateInputFile(content, endpoint) : undefined;
    if (!verdict?.ok) {
      await this.batches.update(batch.id, [from], { status: 'failed', errors: [{ code: 'invalid_file', message: 'The input file was deleted before the batch finished', param: null, line: null }], times: { failed: Date.now() } });
      return;
    }
    const groups = planGroups(endpoint, verdict.requests);
    const output = await this.fileSink(batch, 'output');
    const errors = await this.fileSink(batch, 'error');
    const write = (line: BatchRequestLine, status: number | null, body: unknown, error: { code: string; message: string } | null, into: LineSink): Promise<void> => {
      const seed = hash(batch.id, line.customId);
      const answer = status === null ? null : { statusCode: status, requestId: `req_${seed}`, body };
      return into.add(outputLine(`batch_req_${seed}`, line.customId, answer, error));
    };
    for (const { part: group, ref } of groups.flatMap((g) => partsFromRefs(g, batch.jobs))) {
      const job = ref?.jobId ? await this.jobOf(ref.jobId) : undefined;
      // A page of results at a time (a batch's output can be hundreds of MB): lines come in item order.
      const results = job ? new ResultCursor((offset, limit) => this.manager.resultsPage(ADMIN_SCOPE, job.id, offset, limit), job.totalItems) : undefined;
      const created = Math.floor((job?.completedAt ?? Date.now()) / 1000);
      for (const planned of group.lines) {
        const { line } = planned;
        if (!ref || ref.jobId === null || !results) {
          const code = ref?.error?.code ?? 'RESULTS_EXPIRED';
          const message = ref?.error?.message ?? 'The job that ran this line expired before the batch was finalised';
          await write(line, LINE_STATUS[code] ?? 500, { error: { message, type: code === 'MODEL_NOT_FOUND' ? 'invalid_request_error' : 'server_error', param: code === 'MODEL_NOT_FOUND' ? 'model' : null, code } }, null, errors);
          continue;
        }
        const outcome = lineOutcome(endpoint, line, group.documents.slice(planned.start, planned.end), await results.range(planned.start, planned.end), created);
        if (outcome.ok === true) await write(line, 200, stableBody(outcome.body, hash(batch.id, line.customId, 'body')), null, output);
        else if (outcome.ok === false) {
          if (outcome.code === 'CANCELLED' && target === 'cancelled') continue;
          if (outcome.code === 'CANCELLED' && target === 'expired') await write(line, null, null, { code: 'batch_expired', message: 'This line was not executed before the batch expired' }, errors);
          else {
            const status = LINE_STATUS[outcome.code] ?? 500;
            await write(line, status, { error: { message: outcome.message, type: status < 500 ? 'invalid_request_error' : 'server_error', param: null, code: outcome.code } }, null, errors);
          }
        } else if (target === 'expired') await write(line, null, null, { code: 'batch_expired', message: 'This line was not executed before the batch expired' }, errors);
        // Cancelled before it ran: left out of both files, as OpenAI does.
      }
    }
    const outputFileId = output.count > 0 ? await this.commitFile(batch, 'output', output) : null;
    const errorFileId = errors.count > 0 ? await this.commitFile(batch, 'error', errors) : null;
    const now = Date.now();
    const patch: BatchPatch = {
      status: target,
      outputFileId,
      errorFileId,
      counts: { total: batch.counts.total, completed: output.count, failed: errors.count },
      times: { [target]: now },
    };
    if (await this.batches.update(batch.id, [from], patch)) {
      this.log.info({ batch_id: batch.id, status: target, completed: output.count, failed: errors.count }, 'batch finished');
    }
  }

  /** The batch's output or error file id: derived from the batch, so a second finaliser finds it written. */
  private fileId(batch: StoredBatch, kind: 'output' | 'error'): string {
    return `file-${hash(batch.id, kind)}`;
  }

  /** Where the finaliser writes the batch's output or error lines; only counted when an earlier finaliser wrote the file. */
  private async fileSink(batch: StoredBatch, kind: 'output' | 'error'): Promise<LineSink> {
    const id = this.fileId(batch, kind);
    if (await this.files.get(ADMIN_SCOPE, id)) return new LineSink(undefined);
    return new LineSink(() => this.files.writer({ id, owner: batch.owner, createdAt: Date.now(), filename: `${batch.id}_${kind}.jsonl`, purpose: 'batch_output' }));
  }

  private async commitFile(batch: StoredBatch, kind: 'output' | 'error', lines: LineSink): Promise<string> {
    await lines.commit();
    return this.fileId(batch, kind);
  }
}
