/**
 * The results as one JSON document, written in chunks of about 1 MB:
 * `{<summary>,"results":[<items>],"errors":[<item errors>,<job-level errors>]}`.
 */
import type { ItemResult } from '../../jobs/model.js';
import { AsciiChunks } from './chunks.js';
import { isListed, jobErrors, summaryFields, VECTOR_WRITERS, writeItem } from './items.js';
import type { ResultsPlan } from './query.js';

export async function* resultsJson(plan: ResultsPlan, pages: AsyncIterable<ItemResult[]>): AsyncGenerator<Buffer> {
  const writeVector = VECTOR_WRITERS[plan.encoding];
  const out = new AsciiChunks();
  out.add(`{${summaryFields(plan)},"results":[`);
  // Item errors are gathered while their items go by: at most one short entry per failed item.
  const errors: string[] = [];
  let first = true;
  for await (const items of pages) {
    for (const item of items) {
      if (!isListed(item, plan)) continue;
      if (!first) out.add(',');
      first = false;
      const error = writeItem(out, item, plan, writeVector);
      if (error) errors.push(error);
      if (out.full) yield out.take();
    }
  }
  errors.push(...jobErrors(plan.job));
  out.add(`],"errors":[${errors.join(',')}]}`);
  yield out.take();
}
