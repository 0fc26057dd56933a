/** Builds the configured backends: the one place that knows every adapter. */
import type { BackendSpec } from '../config.js';
import { createEmbeddedBackend } from './embedded/backend.js';
import { OllamaBackend } from './ollama.js';
import type { EmbeddingBackend } from './types.js';

export interface BackendSettings {
  readonly embeddedThreads: number;
  readonly backendTimeoutMs: number;
}

export function createBackend(spec: BackendSpec, settings: BackendSettings): EmbeddingBackend {
  switch (spec.kind) {
    case 'embedded':
      return createEmbeddedBackend({ threads: settings.embeddedThreads });
    case 'ollama':
      return new OllamaBackend({ url: spec.url, timeoutMs: settings.backendTimeoutMs });
    case 'openai':
      throw new UnsupportedBackendError(`OpenAI-compatible backends (${spec.url}) are not supported yet; use an Ollama URL or embedded`);
  }
}

export class UnsupportedBackendError extends Error {}
