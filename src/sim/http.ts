/**
 * Plain node:http plumbing for the simulated node, answering in Ollama's shapes:
 * JSON errors as `{"error": "..."}`, unknown routes as Go's text `404 page not found`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer decided while handling a request: status plus Ollama error message. */
export class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/** Bodies beyond this are refused: the node is a test tool on loopback, not a sink. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

/** The request body as a JSON object, or the 400 Ollama would give. */
export function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') throw new HttpError(400, 'missing request body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `invalid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'json: cannot unmarshal into a request object');
  }
  return value as Record<string, unknown>;
}

/** Sends an already serialised JSON body; a no-op when the client is gone. */
export function sendJson(res: ServerResponse, status: number, body: string | Buffer): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
  });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, JSON.stringify({ error: message }));
}

/** Go's router answer for an unknown route (and for a wrong method: gin does not send 405). */
export function sendNotFound(res: ServerResponse): void {
  sendText(res, 404, '404 page not found');
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A signal that aborts when the connection closes before the answer was sent: the
 * client went away, or `close()` destroyed the socket. Waits use it to stop at once.
 */
export function abortOnClose(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableEnded) controller.abort(new Error('client closed the connection'));
  });
  return controller.signal;
}

/** A string field, or `fallback` when absent; anything else is a 400. */
export function optionalString(body: Record<string, unknown>, key: string, fallback: string): string {
  const value = body[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string') throw new HttpError(400, `json: cannot unmarshal ${typeof value} into field ${key} of type string`);
  return value;
}

/** Model name from a request, as Ollama requires it. */
export function requiredModel(body: Record<string, unknown>): string {
  const model = optionalString(body, 'model', '');
  if (model.trim() === '') throw new HttpError(400, 'model is required');
  return model;
}

export function unknownModel(name: string): HttpError {
  return new HttpError(404, `model ${JSON.stringify(name)} not found, try pulling it first`);
}

/** Nanoseconds since `startNs`, as Ollama reports durations. */
export function elapsedNs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs);
}
