/**
 * `sollol embed INPUT -o OUTPUT --model M`: embeds a whole collection through a gateway.
 *
 * The input is read as a stream; blank documents are skipped and counted. Documents are cut
 * into ranges of at most the gateway's batch limit (read from the gateway), each range one
 * job; up to `--concurrency` jobs are in flight so the gateway never idles between them.
 * Each job is followed on its live events (SSE), its failed items retried through the retry
 * route (`--retries`, default 1), and its results downloaded as base64 NDJSON and appended
 * to OUTPUT in input order while later jobs run. The state file beside OUTPUT makes a rerun
 * continue after a crash of the CLI; a gateway restart is waited out (connection errors and
 * 502-504 are retried with backoff, and events are followed again with Last-Event-ID).
 * Exit codes: 0 all embedded, 3 some documents failed (listed in OUTPUT.errors.jsonl),
 * 1 an error stopped the run, 2 bad usage (or a state file this run cannot continue, or
 * another run holding OUTPUT's lock), 130 Ctrl-C.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import type { SollolClient } from '../client/client.js';
import { withRetries, type RetryPolicy } from '../client/client.js';
import { SollolApiError } from '../client/errors.js';
import type { EmbedOptions, JobView } from '../client/types.js';
import { countLines, formatFromPath, InputError, isBlank, readInput, type InputFormat, type InputSpec } from './embed/input.js';
import { lockOutput, OutputLockedError } from './embed/lock.js';
import { EMPTY_MARK, OutputChangedError, outputFormatOf, OutputWriter, type DocumentId } from './embed/output.js';
import { fmt, Progress } from './embed/progress.js';
import { loadState, signatureChanges, statePathOf, StateFile, STATE_VERSION, type EmbedState, type RunSignature } from './embed/state.js';
import { clientFrom, EXIT, gatewayWaitMs, positiveInt, stopped, usage, withGatewayFlags, type GatewayFlags } from './gatewayFlags.js';

interface EmbedFlags extends GatewayFlags {
  output?: string;
  model?: string;
  inputFormat?: string;
  textField: string;
  idField: string;
  textColumn: string;
  idColumn?: string;
  retries: string;
  concurrency: string;
  batchSize?: string;
  dimensions?: string;
  truncate: boolean;
  restart?: boolean;
  keepJobs?: boolean;
}

const INPUT_FORMATS: readonly InputFormat[] = ['text', 'jsonl', 'csv', 'tsv'];

export function embedCommand(): Command {
  return withGatewayFlags(new Command('embed'))
    .description('Embed a file (one document per line, JSONL, CSV or TSV; - for stdin) into OUTPUT (.jsonl or .npy), resuming after a crash')
    .argument('<input>', 'the documents: a text file (one per line), .jsonl, .csv, .tsv, or - for stdin')
    .option('-o, --output <file>', 'where the vectors go: .jsonl ({"id","index","embedding"} per line) or .npy (float32 matrix, ids in OUTPUT.ids.txt)')
    .option('-m, --model <name>', 'the embedding model')
    .option('--input-format <format>', 'text, jsonl, csv or tsv (default: from the file name; text for stdin)')
    .option('--text-field <name>', 'JSONL: the field holding the text', 'text')
    .option('--id-field <name>', 'JSONL: the field holding the id (default id; else the line number)', 'id')
    .option('--text-column <name>', 'CSV/TSV: the column holding the text', 'text')
    .option('--id-column <name>', 'CSV/TSV: the column holding the id (default: id when there is one; else the line number)')
    .option('--retries <n>', 'times failed documents are retried through the retry route', '1')
    .option('--concurrency <n>', 'jobs in flight at once', '3')
    .option('--batch-size <n>', 'documents per job (default and most: the gateway\'s --max-batch-documents)')
    .option('--dimensions <n>', 'output dimensions, for models that support it')
    .option('--no-truncate', 'fail documents longer than the model\'s context instead of cutting them')
    .option('--restart', 'ignore a state file left by an earlier run and start over')
    .option('--keep-jobs', 'keep each job and its results on the gateway after writing them (default: deleted once written)')
    .action(async (input: string, flags: EmbedFlags) => {
      process.exitCode = await runEmbed(input, flags);
    });
}

interface Batch {
  readonly number: number;
  /** Index of its first document among the input's documents. */
  readonly start: number;
  texts: string[];
  readonly ids: DocumentId[];
  /** Documents of the job done so far (live events). */
  live: number;
  liveFailed: number;
  /** Every job made for this range (retries too), deleted once written unless --keep-jobs. */
  readonly jobs: string[];
  task?: Promise<{ jobId: string } | { error: unknown }>;
  /** Its task has settled (the job ended, or the range failed). */
  finished: boolean;
}

export async function runEmbed(input: string, flags: EmbedFlags): Promise<number> {
  if (!flags.output) usage('missing -o/--output FILE (.jsonl or .npy)');
  if (!flags.model) usage('missing -m/--model NAME');
  const output = flags.output;
  const format = outputFormatOf(output);
  if (!format) usage(`cannot tell the output format of "${output}": name it .jsonl or .npy`);
  const inputFormat = (flags.inputFormat ?? (input === '-' ? 'text' : formatFromPath(input))) as InputFormat;
  if (!INPUT_FORMATS.includes(inputFormat)) usage(`--input-format must be one of ${INPUT_FORMATS.join(', ')}, got "${flags.inputFormat}"`);
  let inputStat: fs.Stats | undefined;
  if (input !== '-') {
    try {
      inputStat = fs.statSync(input);
    } catch {
      usage(`cannot read the input file "${input}"`);
    }
    if (!inputStat.isFile()) usage(`the input "${input}" is not a file`);
  }
  const retries = positiveInt('--retries', flags.retries, 1, 0);
  const concurrency = positiveInt('--concurrency', flags.concurrency, 3);
  const wantedBatch = flags.batchSize === undefined ? undefined : positiveInt('--batch-size', flags.batchSize, 1);
  const dimensions = flags.dimensions === undefined ? undefined : positiveInt('--dimensions', flags.dimensions, 1);
  const client = clientFrom(flags);
  const policy: RetryPolicy = { maxWaitMs: gatewayWaitMs(flags), onRetry: noteRetry };
  const options: EmbedOptions = { truncate: flags.truncate, ...(dimensions !== undefined ? { dimensions } : {}) };
  const spec: InputSpec = { path: input, format: inputFormat, textField: flags.textField, idField: flags.idField, textColumn: flags.textColumn, idColumn: flags.idColumn };
  const signature: RunSignature = {
    input: inputStat ? { path: path.resolve(input), size: inputStat.size, mtimeMs: inputStat.mtimeMs } : { stdin: true },
    model: flags.model,
    inputFormat,
    textField: flags.textField,
    idField: flags.idField,
    textColumn: flags.textColumn,
    idColumn: flags.idColumn ?? null,
    output: path.resolve(output),
    options: { ...options },
  };

  try {
    lockOutput(output);
  } catch (error) {
    if (error instanceof OutputLockedError) usage(error.message);
    throw error;
  }
  const statePath = statePathOf(output);
  let previous: EmbedState | undefined;
  try {
    previous = flags.restart ? undefined : loadState(statePath);
  } catch (error) {
    usage(`cannot read the state file ${statePath}: ${(error as Error).message}`);
  }
  if (previous) {
    const changes = signatureChanges(previous.run, signature);
    if (changes.length > 0) usage(`${statePath} belongs to another run (${changes.join('; ')}); rerun that command, or pass --restart to start over`);
    // The state's ranges are cut at its batch size: another one cannot continue them.
    if (wantedBatch !== undefined && wantedBatch !== previous.batchSize) {
      usage(`${statePath} cuts the input into ranges of ${fmt(previous.batchSize)} documents; --batch-size ${fmt(wantedBatch)} needs --restart (which starts over)`);
    }
  }

  const started = Date.now();
  try {
    const limits = await withRetries(() => client.limits(), policy);
    const batchSize = previous?.batchSize ?? Math.min(limits.maxBatchDocuments, wantedBatch ?? limits.maxBatchDocuments);
    if (batchSize > limits.maxBatchDocuments) throw new Error(`the gateway now takes at most ${fmt(limits.maxBatchDocuments)} documents per job, the state file's ranges have ${fmt(batchSize)}; pass --restart`);
    const state: EmbedState = previous ?? {
      version: STATE_VERSION, run: signature, batchSize, writtenBatches: 0, writtenDocuments: 0, failedDocuments: 0,
      mark: EMPTY_MARK, jobs: {}, finishedRanges: [], updatedAt: '', runId: randomUUID(),
    };
    // `state` is `previous` on a resume, and moves on: this run's rate counts from here.
    const writtenBefore = state.writtenDocuments;
    const stateFile = new StateFile(statePath, state);
    await stateFile.save();
    if (previous) process.stderr.write(`sollol: continuing from ${statePath}: ${fmt(previous.writtenDocuments)} documents already written, ${Object.keys(previous.jobs).length} jobs submitted\n`);
    let writer: OutputWriter;
    try {
      writer = await OutputWriter.open(output, format, state.mark);
    } catch (error) {
      if (error instanceof OutputChangedError) usage(`cannot continue from ${statePath}: ${error.message}; pass --restart to start over`);
      throw error;
    }
    const progress = new Progress('embed');
    progress.setBaseline(state.writtenDocuments);
    // Ctrl-C: the state file is saved after every range, so stopping here loses nothing; the
    // jobs in flight go on on the gateway and the rerun follows them.
    process.once('SIGINT', () => {
      progress.stop();
      process.stderr.write(`\nsollol: interrupted: ${fmt(state.writtenDocuments)} documents written to ${output}; run the same command again to continue\n`);
      process.exit(EXIT.interrupted);
    });
    const run = new EmbedRun(client, policy, flags.model, options, retries, batchSize, state, stateFile, writer, progress, flags.keepJobs === true, path.basename(input));
    const estimate = await countLines(input).catch(() => undefined);
    const { documents, blank } = await run.execute(spec, concurrency, estimate);
    const mark = await writer.close();
    progress.stop();
    await stateFile.remove();
    const seconds = (Date.now() - started) / 1000;
    const failed = state.failedDocuments;
    const embedded = mark.rows;
    const rate = seconds > 0 ? Math.round((state.writtenDocuments - writtenBefore) / seconds) : 0;
    const failedPart = failed > 0 ? `; ${fmt(failed)} failed, listed in ${writer.errorsPath}` : '; 0 failed';
    process.stderr.write(`sollol: embedded ${fmt(embedded)} of ${fmt(documents)} documents into ${output} in ${seconds.toFixed(1)} s (${fmt(rate)} docs/s); ${fmt(blank)} blank skipped${failedPart}\n`);
    return failed > 0 ? EXIT.itemsFailed : EXIT.ok;
  } catch (error) {
    if (error instanceof InputError) {
      process.stderr.write(`sollol: error: ${error.message}\n`);
      return EXIT.error;
    }
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      // The state file records only what reached the files: the rerun cuts off the rest.
      process.stderr.write(`\nsollol: error: the disk holding ${output} is full (${code}): free some space, then run the same command again to continue\n`);
      return EXIT.error;
    }
    return stopped(error);
  }
}

function noteRetry(error: Error, delayMs: number): void {
  process.stderr.write(`sollol: ${error.message}; retrying in ${(delayMs / 1000).toFixed(1)} s\n`);
}

class EmbedRun {
  private readonly inFlight: Batch[] = [];
  private readingDone = false;
  private documents = 0;
  private estimate: number | undefined;

  constructor(
    private readonly client: SollolClient,
    private readonly policy: RetryPolicy,
    private readonly model: string,
    private readonly options: EmbedOptions,
    private readonly retries: number,
    private readonly batchSize: number,
    private readonly state: EmbedState,
    private readonly stateFile: StateFile,
    private readonly writer: OutputWriter,
    private readonly progress: Progress,
    private readonly keepJobs: boolean,
    private readonly inputName: string,
  ) {}

  async execute(spec: InputSpec, concurrency: number, estimate: number | undefined): Promise<{ documents: number; blank: number }> {
    this.estimate = estimate;
    this.concurrency = concurrency;
    let blank = 0;
    let index = 0;
    let current: Batch | undefined;
    // Ranges are written in order by their own loop while the input is read and submitted.
    const writing = this.writeLoop();
    try {
      for await (const record of readInput(spec)) {
        this.throwIfFailed();
        if (isBlank(record.text)) {
          blank++;
          continue;
        }
        const number = Math.floor(index / this.batchSize);
        const position = index++;
        this.documents = index;
        // A range already in the output: read past it, nothing kept, nothing sent.
        if (number < this.state.writtenBatches) continue;
        if (!current || current.number !== number) {
          current = { number, start: number * this.batchSize, texts: [], ids: [], live: 0, liveFailed: 0, jobs: [], finished: false };
        }
        current.texts.push(record.text);
        current.ids.push(record.id ?? record.line);
        if (position === current.start + this.batchSize - 1) {
          await this.dispatch(current);
          current = undefined;
        }
      }
      if (current && current.texts.length > 0) await this.dispatch(current);
    } finally {
      this.readingDone = true;
      this.wake();
    }
    await writing;
    this.throwIfFailed();
    this.render();
    return { documents: this.documents, blank };
  }

  private concurrency = 1;
  private failure: { error: unknown } | undefined;
  private waiters: (() => void)[] = [];

  /** Resolves at the next change: a job finished, a range written, the reading ended, a failure. */
  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /**
   * Submits a range, then waits while `concurrency` jobs are unfinished on the gateway (so it
   * always has work queued, even while the CLI downloads), or while too many finished ranges
   * wait to be written (their results wait on the gateway, only their ids here).
   */
  private async dispatch(batch: Batch): Promise<void> {
    batch.task = this.runBatch(batch).then((jobId) => ({ jobId }), (error: unknown) => ({ error }));
    void batch.task.then(() => {
      batch.finished = true;
      this.wake();
    });
    this.inFlight.push(batch);
    const unfinished = (): number => this.inFlight.filter((b) => !b.finished).length;
    while (!this.failure && (unfinished() >= this.concurrency || this.inFlight.length >= this.concurrency * 3)) await this.changed();
    this.throwIfFailed();
  }

  /** Writes finished ranges in order until the input is read and every range written. */
  private async writeLoop(): Promise<void> {
    try {
      for (;;) {
        const head = this.inFlight[0];
        if (head?.finished) {
          await this.writeNext();
          this.wake();
          continue;
        }
        if (!head && this.readingDone) return;
        await this.changed();
      }
    } catch (error) {
      this.failure = { error };
      this.wake();
    }
  }

  /** Submits the range (or follows its job from the state file), waits, retries failures; the job to download. */
  private async runBatch(batch: Batch): Promise<string> {
    const key = String(batch.number);
    let jobId: string | undefined = this.state.jobs[key];
    if (jobId !== undefined) {
      const known = await withRetries(() => this.client.status(jobId!), this.policy).catch((error: unknown) => {
        if (error instanceof SollolApiError && error.code === 'JOB_NOT_FOUND') return undefined;
        throw error;
      });
      if (!known) jobId = undefined;
    }
    // A job the state file names but the gateway no longer has (expired, evicted) is submitted anew.
    const lost = this.state.jobs[key] !== undefined && jobId === undefined;
    if (jobId === undefined) {
      const texts = batch.texts;
      const metadata = { source: 'sollol embed', input: this.inputName, first_index: batch.start };
      // The key is derived from the run and what is submitted, so a rerun after a crash between
      // the submit and the state file's save finds the job made then instead of embedding the
      // range again; another run of the same command gets jobs of its own (state.ts, runId).
      const signed = [this.model, this.options ?? null, metadata];
      const digest = createHash('sha256').update(JSON.stringify(this.state.runId === undefined ? signed : [this.state.runId, ...signed]));
      for (const text of texts) digest.update(`\n${text}`);
      const idempotencyKey = `sollol-embed-${digest.digest('hex').slice(0, 48)}${lost ? `-${Date.now()}` : ''}`;
      const answer = await withRetries(() => this.client.submit(this.model, texts, { options: this.options, metadata, idempotencyKey }), this.policy).catch((error: unknown) => {
        if (!(error instanceof SollolApiError) || error.code !== 'BODY_TOO_LARGE') throw error;
        const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
        const size = bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} KB`;
        if (texts.length === 1) throw new Error(`document ${fmt(batch.start)} alone (${size} of text) is larger than the gateway accepts in one request (BODY_TOO_LARGE): shorten it, or raise the gateway's --body-limit-mb`);
        throw new Error(
          `the range of ${fmt(texts.length)} documents from document ${fmt(batch.start)} (${size} of text) is larger than the gateway accepts in one request (BODY_TOO_LARGE): ` +
            `rerun with --restart --batch-size ${fmt(Math.max(1, Math.floor(texts.length / 2)))} (smaller ranges), or raise the gateway's --body-limit-mb`,
        );
      });
      jobId = answer.job_id;
      // Test-only (documented in the README's development notes): die between the submit and the
      // state file's save, the window the idempotency key above covers.
      if (process.env.SOLLOL_TEST_CRASH_AFTER_SUBMIT === '1') process.kill(process.pid, 'SIGKILL');
      this.state.jobs[key] = jobId;
      await this.stateFile.save();
    }
    batch.texts = [];
    batch.jobs.push(jobId);
    let retriesLeft = this.retries;
    for (;;) {
      const final: JobView = await this.client.wait(jobId, {
        ...this.policy,
        onEvent: (event) => {
          const d = event.data as Record<string, unknown>;
          const progress = (d.progress as Record<string, number> | undefined) ?? (d as Record<string, number>);
          batch.live = (progress.completed_items ?? 0) + (progress.failed_items ?? 0);
          batch.liveFailed = progress.failed_items ?? 0;
          this.render();
        },
      });
      const p = final.progress;
      const notDone = p.total_items - p.completed_items;
      if (notDone === 0 || retriesLeft <= 0) break;
      retriesLeft--;
      const retry = await withRetries(() => this.client.retry(jobId!), this.policy);
      process.stderr.write(`sollol: retrying ${fmt(retry.retried_items)} documents of job ${jobId} as job ${retry.job_id}\n`);
      jobId = retry.job_id;
      batch.jobs.push(jobId);
      this.state.jobs[key] = jobId;
      await this.stateFile.save();
    }
    return jobId;
  }

  /** Downloads the oldest range's results into the output, then records it as written. */
  private async writeNext(): Promise<void> {
    const batch = this.inFlight[0]!;
    const outcome = await batch.task!;
    if ('error' in outcome) throw outcome.error;
    const jobId = outcome.jobId;
    let written = 0;
    let failed = 0;
    await withRetries(async (progressed) => {
      for await (const item of this.client.results(jobId, { offset: written })) {
        const id = batch.ids[item.index]!;
        const index = batch.start + item.index;
        if (item.embedding) await this.writer.addVector(id, index, item.embedding);
        else {
          await this.writer.addError(id, index, item.code, item.error);
          failed++;
        }
        written++;
        progressed();
      }
    }, this.policy);
    if (written !== batch.ids.length) throw new Error(`job ${jobId} returned ${written} results for ${batch.ids.length} documents`);
    const mark = await this.writer.flush();
    this.inFlight.shift();
    const state = this.state;
    state.writtenBatches = batch.number + 1;
    state.writtenDocuments += written;
    state.failedDocuments += failed;
    state.mark = mark;
    state.finishedRanges.push([batch.start, batch.start + written]);
    delete state.jobs[String(batch.number)];
    await this.stateFile.save();
    this.render();
    if (!this.keepJobs) {
      for (const id of batch.jobs) await this.client.deleteResults(id).catch(() => undefined);
    }
  }

  private render(): void {
    let done = this.state.writtenDocuments;
    let failed = this.state.failedDocuments;
    for (const batch of this.inFlight) {
      done += batch.live;
      failed += batch.liveFailed;
    }
    const total = this.readingDone ? this.documents : Math.max(this.estimate ?? 0, this.documents);
    this.progress.update({ done, failed, total });
  }
}
