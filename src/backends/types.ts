/**
 * The port every embedding backend implements: an Ollama node, an OpenAI-compatible
 * server, or the in-process model. The job core never speaks HTTP to a backend; it
 * asks the pool, which asks an `EmbeddingBackend`. A backend never knows about jobs.
 */

/** Per-call embedding settings, resolved from a job's `options`. */
export interface EmbedOptions {
  /** Let the backend cut inputs longer than the model's context. @defaultValue true */
  readonly truncate: boolean;
  /** Output dimensions, for models that support it. */
  readonly dimensions?: number;
  /** How long the backend keeps the model loaded (Ollama `keep_alive`). */
  readonly keepAlive?: string | number;
}

export interface EmbedRequest {
  readonly model: string;
  /** Non-empty strings, one vector each, in order. */
  readonly inputs: readonly string[];
  readonly options: EmbedOptions;
  /** Aborts the call (cancel, shutdown, timeout). */
  readonly signal?: AbortSignal;
}

export interface EmbedResult {
  /** `vectors[i]` belongs to `inputs[i]`. */
  readonly vectors: Float32Array[];
  /** Indices (into `inputs`) that the backend or the gateway cut to fit the model. */
  readonly truncated?: readonly number[];
}

export interface BackendProbe {
  readonly healthy: boolean;
  /** Model names as the backend reports them (e.g. `nomic-embed-text:latest`). */
  readonly models: readonly string[];
  /** Why it is unhealthy, for stats and logs (never contains secrets). */
  readonly error?: string;
  /** Set when the backend is a sollol gateway: its instance id (to refuse pointing a gateway at itself). */
  readonly sollolInstance?: string;
}

export type BackendKind = 'ollama' | 'openai' | 'embedded' | 'workers';

export interface EmbeddingBackend {
  /** Display name, safe to show: a URL without credentials, or `embedded`. */
  readonly id: string;
  readonly kind: BackendKind;
  /** How many calls the pool may keep in flight on this backend at once. */
  readonly maxConcurrency: number;
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /** Health check and model list; never throws. */
  probe(signal?: AbortSignal): Promise<BackendProbe>;
  close(): Promise<void>;
}
