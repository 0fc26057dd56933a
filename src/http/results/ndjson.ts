/**
 * The results as NDJSON: a first line with the job summary and the job-level errors
 * (`{<summary>,"errors":[...]}`, no `index` key), then one line per item
 * (`{"index":i,"embedding":...}`), each error on its own item's line. Every line ends in `\n`.
 */
import type { ItemResult } from '../../jobs/model.js';
import { AsciiChunks } from './chunks.js';
import { isListed, jobErrors, summaryFields, VECTOR_WRITERS, writeItem } from './items.js';
import type { ResultsPlan } from './query.js';

export async function* resultsNdjson(plan: ResultsPlan, pages: AsyncIterable<ItemResult[]>): AsyncGenerator<Buffer> {
  const writeVector = VECTOR_WRITERS[plan.encoding];
  const out = new AsciiChunks();
  out.add(`{${summaryFields(plan)},"errors":[${jobErrors(plan.job).join(',')}]}\n`);
  for await (const items of pages) {
    for (const item of items) {
      if (!isListed(item, plan)) continue;
      writeItem(out, item, plan, writeVector);
      out.add('\n');
      if (out.full) yield out.take();
    }
  }
  yield out.take();
}
