/**
 * Optional details that travel beside the `EmbeddingBackend` port without widening it:
 * the sync API passes Ollama's model `options` through, and reports the token count and
 * load time a backend measured. Both ride on the ordinary request/result objects
 * (structural subtypes), so the pool and the job core carry them untouched and a backend
 * that knows nothing about them simply ignores them.
 */
import type { EmbedOptions, EmbedResult } from './types.js';

/** `EmbedOptions` plus Ollama's per-call model `options` (`num_ctx`, `num_thread`, ...). */
export interface PassThroughEmbedOptions extends EmbedOptions {
  readonly modelOptions?: Readonly<Record<string, unknown>>;
}

/** What a backend measured for one call, when it says. */
export interface EmbedUsage {
  /** Tokens the model read (Ollama `prompt_eval_count`, OpenAI `usage.prompt_tokens`). */
  readonly promptTokens?: number;
  /** Nanoseconds the backend spent loading or scheduling the model (Ollama `load_duration`). */
  readonly loadDurationNs?: number;
}

export type EmbedResultWithUsage = EmbedResult & EmbedUsage;

export function modelOptionsOf(options: EmbedOptions): Readonly<Record<string, unknown>> | undefined {
  return (options as PassThroughEmbedOptions).modelOptions;
}

export function usageOf(result: EmbedResult): EmbedUsage {
  const { promptTokens, loadDurationNs } = result as EmbedResultWithUsage;
  return {
    ...(typeof promptTokens === 'number' && Number.isFinite(promptTokens) ? { promptTokens } : {}),
    ...(typeof loadDurationNs === 'number' && Number.isFinite(loadDurationNs) ? { loadDurationNs } : {}),
  };
}

/** A non-negative finite number from a backend's JSON, or undefined. */
export function countField(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
