/**
 * A backend base URL split into what is safe to show (no credentials) and what is sent
 * (an Authorization header built from user:pass in the URL).
 */
export interface HttpTarget {
  /** scheme://host:port, the connection pool's key. */
  readonly origin: string;
  /** Path prefix without a trailing slash ('' for none). */
  readonly basePath: string;
  /** The URL without credentials: the backend's display id. */
  readonly displayUrl: string;
  readonly headers: Readonly<Record<string, string>>;
}

export function httpTarget(url: string, bearerToken?: string): HttpTarget {
  const parsed = new URL(url);
  const headers: Record<string, string> = {};
  if (parsed.username !== '' || parsed.password !== '') {
    const user = decodeURIComponent(parsed.username);
    const pass = decodeURIComponent(parsed.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  if (bearerToken) headers.authorization = `Bearer ${bearerToken}`;
  const basePath = parsed.pathname.replace(/\/+$/, '');
  return { origin: parsed.origin, basePath, displayUrl: `${parsed.origin}${basePath}`, headers };
}

/** Options every HTTP backend adapter takes. */
export interface HttpBackendOptions {
  readonly url: string;
  /** Calls the pool may keep in flight here. @defaultValue 2 */
  readonly maxConcurrency?: number;
  /** Whole-call timeout. */
  readonly timeoutMs: number;
  /** Timeout of health checks. @defaultValue 3000 */
  readonly probeTimeoutMs?: number;
  /**
   * Generation slots (`?parallel=N` on `--backend`): generations kept in flight here at once.
   * @defaultValue 1 for an Ollama node (DEFAULT_GENERATION_PARALLEL), 0 (embeddings only) for an OpenAI-compatible server
   */
  readonly parallel?: number;
  /** Timeout of one generation (headers, and each silence in a streamed body). @defaultValue 600000 */
  readonly generationTimeoutMs?: number;
}
