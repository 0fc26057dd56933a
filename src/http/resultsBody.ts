/**
 * The body of GET /api/batch/results/{id} in the format asked for, as a byte stream produced
 * page by page: a 10,000 x 1024 job (over 100 MB of JSON) is never one string, and the next
 * page is read only when the socket has drained (Readable.from pulls the generator on demand).
 */
import { Readable } from 'node:stream';
import { resultsJson } from './results/json.js';
import { resultsNdjson } from './results/ndjson.js';
import { CHUNK_TARGET_BYTES } from './results/chunks.js';
import { readPages, type PageReader } from './results/pages.js';
import type { ResultsFormat, ResultsPlan } from './results/query.js';

export { RESULTS_PAGE_SIZE, type PageReader } from './results/pages.js';

const WRITERS = { json: resultsJson, ndjson: resultsNdjson } as const;

/**
 * Bytes the stream may hold ahead of the socket: the next chunk is formatted while the
 * last one is still being written, instead of after it drained (with the default 16 KiB
 * mark the two never overlap). Two chunks per download keep four at once well bounded.
 */
const READ_AHEAD_BYTES = 2 * CHUNK_TARGET_BYTES;

export function resultsBody(format: ResultsFormat, plan: ResultsPlan, readPage: PageReader): Readable {
  return Readable.from(WRITERS[format](plan, readPages(plan, readPage)), { objectMode: false, highWaterMark: READ_AHEAD_BYTES });
}
