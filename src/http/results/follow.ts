/**
 * `GET /api/batch/results/{id}?format=ndjson&follow=true`: the NDJSON results of a job still
 * running, each item as soon as it and every item before it have finished (index order), and
 * the end of the body when the job ends. The first line is the summary as the job was when
 * the request came; items a finished job left unprocessed get their error line at the end.
 * The job is re-read from the shared store every {@link FOLLOW_POLL_MS} while nothing new is
 * finished, so this works on any gateway in distributed mode.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ItemResult, JobRecord } from '../../jobs/model.js';
import { isTerminal } from '../../jobs/state.js';
import { AsciiChunks } from './chunks.js';
import { jobErrors, summaryFields, VECTOR_WRITERS, writeItem } from './items.js';
import { RESULTS_PAGE_SIZE, type PageReader } from './pages.js';
import type { ResultsPlan } from './query.js';

export const FOLLOW_POLL_MS = 250;

export type JobReader = () => Promise<JobRecord | undefined>;

export function followBody(plan: ResultsPlan, readJob: JobReader, readPage: PageReader, signal: AbortSignal): Readable {
  return Readable.from(followNdjson(plan, readJob, readPage, signal), { objectMode: false });
}

export async function* followNdjson(plan: ResultsPlan, readJob: JobReader, readPage: PageReader, signal: AbortSignal): AsyncGenerator<Buffer> {
  const writeVector = VECTOR_WRITERS[plan.encoding];
  const out = new AsciiChunks();
  out.add(`{${summaryFields(plan)},"errors":[${jobErrors(plan.job).join(',')}]}\n`);
  yield out.take();
  let next = plan.offset;
  let job = plan.job;
  while (next < plan.end && !signal.aborted) {
    // The status first: items read after a terminal status are all there is.
    const terminal = isTerminal(job.status);
    const want = Math.min(RESULTS_PAGE_SIZE, plan.end - next);
    const items: ItemResult[] = await readPage(next, want);
    if (items.length !== want) throw new Error(`results of job ${job.id} disappeared while being sent (deleted or expired)`);
    let written = 0;
    const itemPlan = { ...plan, job, partial: false };
    for (const item of items) {
      if (item.state === 'pending' && !terminal) break;
      writeItem(out, item, itemPlan, writeVector);
      out.add('\n');
      written++;
    }
    next += written;
    if (written > 0) {
      yield out.take();
      continue;
    }
    await sleep(FOLLOW_POLL_MS, undefined, { signal }).catch(() => undefined);
    const now = await readJob();
    if (now === undefined) throw new Error(`job ${job.id} disappeared while being followed (deleted or expired)`);
    job = now;
  }
}
