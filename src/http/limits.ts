/**
 * The per-document length limit (`--max-document-chars`), checked at the edge: after the body
 * is parsed and validated, before the route admits a job or calls a backend. Batch documents
 * answer 400 DOCUMENT_TOO_LONG naming `documents[i]`; sync inputs the same code in their
 * family's shape, naming `input[i]` (or `prompt`).
 * Characters are Unicode code points, as Python's `len()` counts them.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError, formatCount } from '../errors.js';
import { CompatError } from './compatErrors.js';

/** Routes whose body carries texts to embed: the field, and which error dialect the route speaks. */
const TEXT_FIELDS: Readonly<Record<string, { readonly field: string; readonly family: 'batch' | 'sync' }>> = {
  '/api/batch/embed': { field: 'documents', family: 'batch' },
  '/api/embed': { field: 'input', family: 'sync' },
  '/api/embeddings': { field: 'prompt', family: 'sync' },
  '/v1/embeddings': { field: 'input', family: 'sync' },
};

/** Code points in `text`. */
export function charCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Cheap in the common case: a string of at most `max` UTF-16 units has at most `max` code points. */
export function isTooLong(text: string, max: number): boolean {
  if (text.length <= max) return false;
  if (text.length > 2 * max) return true;
  return charCount(text) > max;
}

export function installDocumentLimit(app: FastifyInstance, maxChars: number): void {
  app.addHook('preHandler', async (request) => {
    const spec = request.routeOptions.url === undefined ? undefined : TEXT_FIELDS[request.routeOptions.url];
    const body = request.body;
    if (spec === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) return;
    const value = (body as Record<string, unknown>)[spec.field];
    const texts: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    const at = texts.findIndex((text) => typeof text === 'string' && isTooLong(text, maxChars));
    if (at < 0) return;
    const name = typeof value === 'string' ? spec.field : `${spec.field}[${at}]`;
    const message =
      `${name} is ${formatCount(charCount(texts[at] as string))} characters; the gateway accepts at most ` +
      `${formatCount(maxChars)} per document (--max-document-chars): split it into smaller documents`;
    throw spec.family === 'batch' ? new ApiError('DOCUMENT_TOO_LONG', message) : new CompatError('DOCUMENT_TOO_LONG', message, { param: spec.field });
  });
}
