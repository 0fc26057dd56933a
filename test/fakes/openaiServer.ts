/**
 * A tiny OpenAI-compatible embedding server for tests (TEI / vLLM / llama.cpp stand-in):
 * `GET /v1/models`, `POST /v1/embeddings` with the vectors `simVector` gives, an optional
 * bearer key, and scriptable failures. Plain node:http on loopback.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { simVector } from '../../src/sim/index.js';

export interface FakeOpenAIOptions {
  /** Model id -> dimensions. */
  models: Record<string, number>;
  /** When set, calls need `Authorization: Bearer <apiKey>` (401 quoting the key otherwise, as OpenAI does). */
  apiKey?: string;
  /** Answer every embeddings call with this status and an OpenAI error body. */
  failStatus?: number;
  /** Never answer embeddings calls (until the server closes). */
  hang?: boolean;
  /** Return `data` in reverse order (with correct `index`es), as some servers may. */
  reverse?: boolean;
  /** Delay per embeddings call, ms. */
  delayMs?: number;
}

export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown> | undefined;
}

export interface FakeOpenAI {
  readonly url: string;
  readonly calls: RecordedCall[];
  options: FakeOpenAIOptions;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function openaiError(res: ServerResponse, status: number, message: string, code: string | null): void {
  send(res, status, { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code } });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
}

export async function startFakeOpenAI(t: TestContext | undefined, options: FakeOpenAIOptions): Promise<FakeOpenAI> {
  const calls: RecordedCall[] = [];
  const state = { options };
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readJson(req);
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      calls.push({ method: req.method ?? 'GET', path, authorization: req.headers.authorization, body });
      const o = state.options;
      if (o.apiKey !== undefined && req.headers.authorization !== `Bearer ${o.apiKey}`) {
        const given = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        return openaiError(res, 401, `Incorrect API key provided: ${given}.`, 'invalid_api_key');
      }
      if (req.method === 'GET' && path === '/v1/models') {
        return send(res, 200, { object: 'list', data: Object.keys(o.models).map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake' })) });
      }
      if (req.method === 'POST' && path === '/v1/embeddings') {
        if (o.hang) return;
        if (o.delayMs) await new Promise((resolve) => setTimeout(resolve, o.delayMs));
        if (o.failStatus !== undefined) return openaiError(res, o.failStatus, `simulated ${o.failStatus}`, null);
        const model = String(body?.model);
        const dims = o.models[model];
        if (dims === undefined) return openaiError(res, 404, `The model \`${model}\` does not exist`, 'model_not_found');
        const input = body?.input;
        const texts = typeof input === 'string' ? [input] : (input as string[]);
        const wanted = typeof body?.dimensions === 'number' ? body.dimensions : dims;
        const data = texts.map((text, index) => ({ object: 'embedding', index, embedding: Array.from(simVector(model, text, wanted)) }));
        if (o.reverse) data.reverse();
        return send(res, 200, { object: 'list', data, model, usage: { prompt_tokens: texts.length * 3, total_tokens: texts.length * 3 } });
      }
      openaiError(res, 404, 'not found', null);
    })().catch((error: unknown) => openaiError(res, 500, String(error), null));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const fake: FakeOpenAI = {
    url: `http://127.0.0.1:${port}`,
    calls,
    get options() {
      return state.options;
    },
    set options(value) {
      state.options = value;
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
  t?.after(() => fake.close());
  return fake;
}
