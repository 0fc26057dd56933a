/**
 * The items of a response, read from the store one page at a time. The stream pulls the
 * next page only when the socket has drained, so a download holds about one page in memory
 * whatever its size.
 */
import type { ItemResult } from '../../jobs/model.js';
import type { ResultsPlan } from './query.js';

/** Items per store read: 256 x 1024 floats is about 1 MB of vectors, 3 MB of JSON. */
export const RESULTS_PAGE_SIZE = 256;

export type PageReader = (offset: number, limit: number) => Promise<ItemResult[]>;

/**
 * Pages of the plan's range, in order. A page shorter than asked means the job was deleted
 * (DELETE results, TTL) while it was being sent: that throws, so the response is cut off
 * (the client sees an incomplete transfer) instead of ending as a valid but shorter document.
 */
export async function* readPages(plan: ResultsPlan, readPage: PageReader, pageSize = RESULTS_PAGE_SIZE): AsyncGenerator<ItemResult[]> {
  for (let from = plan.offset; from < plan.end; from += pageSize) {
    const want = Math.min(pageSize, plan.end - from);
    const items = await readPage(from, want);
    if (items.length !== want) throw new Error(`results of job ${plan.job.id} disappeared while being sent (deleted or expired)`);
    yield items;
  }
}
