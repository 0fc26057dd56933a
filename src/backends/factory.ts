/** Builds the configured backends: the one place that knows every adapter. */
import type { BackendSpec } from '../config.js';
import { createEmbeddedBackend } from './embedded/backend.js';
import { OllamaBackend } from './ollama.js';
import { OpenAIBackend } from './openai.js';
import type { EmbeddingBackend } from './types.js';

export interface BackendSettings {
  readonly embeddedThreads: number;
  readonly backendTimeoutMs: number;
  /** Whole-call timeout of one generation. @defaultValue DEFAULT_GENERATION_TIMEOUT_MS */
  readonly generationTimeoutMs?: number;
  /** Bearer token for OpenAI-compatible backends; defaults to `SOLLOL_OPENAI_API_KEY`. A key in a backend's URL wins. */
  readonly openaiApiKey?: string;
}

export function createBackend(spec: BackendSpec, settings: BackendSettings): EmbeddingBackend {
  switch (spec.kind) {
    case 'embedded':
      return createEmbeddedBackend({ threads: settings.embeddedThreads });
    case 'ollama':
      return new OllamaBackend({ url: spec.url, timeoutMs: settings.backendTimeoutMs, ...generationSettings(spec, settings) });
    case 'openai': {
      const apiKey = settings.openaiApiKey ?? process.env.SOLLOL_OPENAI_API_KEY;
      return new OpenAIBackend({ url: spec.url, timeoutMs: settings.backendTimeoutMs, ...generationSettings(spec, settings), ...(urlHasKey(spec.url) || !apiKey ? {} : { apiKey }) });
    }
  }
}

function generationSettings(spec: { readonly parallel?: number }, settings: BackendSettings): { parallel?: number; generationTimeoutMs?: number } {
  return {
    ...(spec.parallel === undefined ? {} : { parallel: spec.parallel }),
    ...(settings.generationTimeoutMs === undefined ? {} : { generationTimeoutMs: settings.generationTimeoutMs }),
  };
}

function urlHasKey(url: string): boolean {
  const parsed = new URL(url);
  return parsed.username !== '' || parsed.password !== '';
}

/** Kept for callers that still catch it; no backend kind is unsupported any more. */
export class UnsupportedBackendError extends Error {}
