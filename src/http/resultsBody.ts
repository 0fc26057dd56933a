/**
 * The body of GET /api/batch/results/{id} in the format asked for, as a byte stream produced
 * page by page: a 10,000 x 1024 job (over 100 MB of JSON) is never one string, and the next
 * page is read only when the socket has drained (Readable.from pulls the generator on demand).
 */
import { Readable } from 'node:stream';
import { resultsJson } from './results/json.js';
import { resultsNdjson } from './results/ndjson.js';
import { readPages, type PageReader } from './results/pages.js';
import type { ResultsFormat, ResultsPlan } from './results/query.js';

export { RESULTS_PAGE_SIZE, type PageReader } from './results/pages.js';

const WRITERS = { json: resultsJson, ndjson: resultsNdjson } as const;

export function resultsBody(format: ResultsFormat, plan: ResultsPlan, readPage: PageReader): Readable {
  return Readable.from(WRITERS[format](plan, readPages(plan, readPage)), { objectMode: false });
}
