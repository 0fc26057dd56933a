/**
 * The simulated Ollama node: a TEST TOOL that speaks Ollama's HTTP API with
 * deterministic vectors and scriptable misbehaviour, because real Ollama cannot run
 * in tests or CI. Plain node:http so its own overhead stays negligible in benchmarks.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleEmbed, handleLegacyEmbeddings } from './embed.js';
import { handleChat, handleGenerate } from './generate.js';
import { handleOpenAIChat, handleOpenAICompletion } from './openaiCompat.js';
import {
  abortOnClose,
  HttpError,
  parseJsonObject,
  readBody,
  requiredModel,
  sendError,
  sendJson,
  sendNotFound,
  sendText,
  unknownModel,
} from './http.js';
import { psBody, showBody, tagsBody } from './models.js';
import { resolveSimOptions, SimConfigError, type SimOptions } from './options.js';
import { SimState } from './state.js';
import type { SimStats } from './stats.js';

/** The Ollama version the node claims; 0.5.7 has `/api/embed` with `truncate` and `dimensions`. */
export const SIM_OLLAMA_VERSION = '0.5.7';

/** Where the node listens, on top of its behaviour. */
export interface SimListenOptions {
  /** TCP port; 0 picks a free one. @defaultValue 0 */
  readonly port?: number;
  /** Interface to bind; loopback unless told otherwise, since this is a test tool. @defaultValue '127.0.0.1' */
  readonly host?: string;
}

/** A running simulated node. */
export interface SimNode {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** A snapshot of the counters and gauges. */
  stats(): SimStats;
  /** Zeroes the counters (gauges such as `inFlight` keep their live value). */
  resetStats(): void;
  /** Changes behaviour at runtime; throws SimConfigError (and changes nothing) on a bad value. */
  configure(patch: Partial<SimOptions>): SimOptions;
  /** The behaviour currently in force. */
  options(): SimOptions;
  /**
   * Stops listening and destroys every open socket, hung calls included, so the
   * node can "die" mid-job. Idempotent.
   */
  close(): Promise<void>;
}

type BodyHandler = (state: SimState, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal) => Promise<void>;

/** Model-calling routes: they read a JSON body and may wait, so they get an abort signal. */
const MODEL_ROUTES: Readonly<Record<string, BodyHandler>> = {
  '/api/embed': handleEmbed,
  '/api/embeddings': handleLegacyEmbeddings,
  '/api/generate': handleGenerate,
  '/api/chat': handleChat,
  '/v1/chat/completions': handleOpenAIChat,
  '/v1/completions': handleOpenAICompletion,
};

function countCall(state: SimState, path: string): void {
  if (path === '/api/embed') state.counters.embedCalls++;
  else if (path === '/api/embeddings') state.counters.legacyEmbedCalls++;
}

/** Answers a failure in Ollama's shape, keeping the counters honest. */
function answerFailure(state: SimState, res: ServerResponse, signal: AbortSignal, error: unknown): void {
  if (signal.aborted) {
    state.counters.aborted++;
    return;
  }
  if (error instanceof HttpError) {
    if (error.status >= 400 && error.status < 500) state.counters.rejected++;
    sendError(res, error.status, error.message);
    return;
  }
  sendError(res, 500, error instanceof Error ? error.message : String(error));
}

async function handleModelRoute(state: SimState, handler: BodyHandler, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const signal = abortOnClose(res);
  countCall(state, path);
  try {
    const body = parseJsonObject(await readBody(req));
    await handler(state, body, res, signal);
  } catch (error) {
    answerFailure(state, res, signal, error);
  }
}

async function handleShow(state: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = parseJsonObject(await readBody(req));
  // `/api/show` historically took `name`; newer clients send `model`.
  const requested = requiredModel({ model: body['model'] || body['name'] });
  const model = state.catalog.resolve(requested);
  if (!model) throw unknownModel(requested);
  sendJson(res, 200, showBody(model, state.options.maxInputChars));
}

async function handleConfig(state: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = parseJsonObject(await readBody(req));
  try {
    sendJson(res, 200, JSON.stringify(state.configure(body)));
  } catch (error) {
    if (error instanceof SimConfigError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** Metadata and control routes: quick, never hang, never fail on purpose. */
async function handleOther(state: SimState, route: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  switch (route) {
    case 'GET /':
    case 'HEAD /':
      return sendText(res, 200, 'Ollama is running');
    case 'GET /api/version':
      return sendJson(res, 200, `{"version":"${SIM_OLLAMA_VERSION}"}`);
    case 'GET /api/tags':
      return sendJson(res, 200, tagsBody(state.catalog));
    case 'GET /api/ps':
      return sendJson(res, 200, psBody(state.loadedModels(), new Date(Date.now() + 5 * 60 * 1000)));
    case 'POST /api/show':
      return handleShow(state, req, res);
    case 'GET /sim/stats':
      return sendJson(res, 200, JSON.stringify(state.stats()));
    case 'POST /sim/reset':
      state.resetStats();
      return sendJson(res, 200, JSON.stringify(state.stats()));
    case 'GET /sim/config':
      return sendJson(res, 200, JSON.stringify(state.options));
    case 'POST /sim/config':
      return handleConfig(state, req, res);
    default:
      state.counters.notFound++;
      req.resume();
      return sendNotFound(res);
  }
}

function route(state: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const rawUrl = req.url ?? '/';
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const handler = MODEL_ROUTES[path];
  const hidden = path === '/api/embed' && state.options.legacyOnly;
  if (req.method === 'POST' && handler && !hidden) return handleModelRoute(state, handler, path, req, res);
  return handleOther(state, `${req.method ?? 'GET'} ${path}`, req, res);
}

/** The address to put in a URL: wildcard binds are reached through loopback. */
function urlHost(address: AddressInfo): string {
  if (address.address === '0.0.0.0') return '127.0.0.1';
  if (address.address === '::') return '[::1]';
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function validPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new SimConfigError(`port must be an integer from 0 to 65535, got ${port}`);
  return port;
}

/** Starts a simulated Ollama node (a test tool) and resolves once it listens. */
export async function startSimNode(options: Partial<SimOptions> & SimListenOptions = {}): Promise<SimNode> {
  const { port = 0, host = '127.0.0.1', ...behaviour } = options;
  const state = new SimState(resolveSimOptions(behaviour));
  // Requests still being handled, so close() can wait until their counters settle.
  const active = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const handling = route(state, req, res)
      .catch((error: unknown) => {
        if (error instanceof HttpError && error.status >= 400 && error.status < 500) state.counters.rejected++;
        if (error instanceof HttpError) sendError(res, error.status, error.message);
        else sendError(res, 500, error instanceof Error ? error.message : String(error));
      })
      .finally(() => active.delete(handling));
    active.add(handling);
  });
  const address = await listen(server, validPort(port), host);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(address)}:${address.port}`,
    port: address.port,
    stats: () => state.stats(),
    resetStats: () => state.resetStats(),
    configure: (patch) => state.configure(patch),
    options: () => state.options,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Destroying the sockets is the point: hung and slow calls end with a socket
        // error on the client, as when a real node dies.
        server.closeAllConnections();
      }).then(async () => {
        // The handlers see their sockets close a tick later; wait so stats() is final.
        await Promise.allSettled([...active]);
      });
      return closing;
    },
  };
}
