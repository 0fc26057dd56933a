/**
 * The results document, produced page by page so a 10,000 x 1024 job (well over 100 MB of
 * JSON) is never one string: the stream pulls the next page only when the socket drained.
 */
import { float32ArrayToJson } from '../util/float32Json.js';
import type { ItemResult, JobRecord } from '../jobs/model.js';

export const RESULTS_PAGE_SIZE = 256;

type PageReader = (offset: number, limit: number) => Promise<ItemResult[]>;

const CANCELLED_ITEM = { error: 'The job was cancelled before this document was processed', code: 'CANCELLED' };

export async function* resultsJson(job: JobRecord, readPage: PageReader): AsyncGenerator<string> {
  yield `{"job_id":${JSON.stringify(job.id)},"status":${JSON.stringify(job.status)},"model":${JSON.stringify(job.model)},` +
    `"dimensions":${job.dimensions ?? 'null'},"total_items":${job.totalItems},"completed_items":${job.completedItems},` +
    `"failed_items":${job.failedItems},"results":[`;
  const errors: string[] = [];
  for (let offset = 0; offset < job.totalItems; offset += RESULTS_PAGE_SIZE) {
    const items = await readPage(offset, RESULTS_PAGE_SIZE);
    const parts = items.map((item) => itemJson(item, job, errors));
    yield (offset === 0 ? '' : ',') + parts.join(',');
  }
  for (const e of job.errors) errors.push(`{"index":null,"error":${JSON.stringify(e.error)},"code":${JSON.stringify(e.code)}}`);
  yield `],"errors":[${errors.join(',')}]}`;
}

function itemJson(item: ItemResult, job: JobRecord, errors: string[]): string {
  if (item.state === 'done') {
    return item.truncated ? `{"embedding":${float32ArrayToJson(item.vector)},"truncated":true}` : `{"embedding":${float32ArrayToJson(item.vector)}}`;
  }
  if (item.state === 'failed') {
    errors.push(`{"index":${item.index},"error":${JSON.stringify(item.error)},"code":${JSON.stringify(item.code)}}`);
    return `{"embedding":null,"error":${JSON.stringify(item.error)},"code":${JSON.stringify(item.code)}}`;
  }
  // Never processed: only a cancelled job leaves documents pending (not counted as failed).
  const reason = job.status === 'cancelled' ? CANCELLED_ITEM : { error: 'This document was not processed', code: job.errors[0]?.code ?? 'BACKEND_UNAVAILABLE' };
  return `{"embedding":null,"error":${JSON.stringify(reason.error)},"code":${JSON.stringify(reason.code)}}`;
}
