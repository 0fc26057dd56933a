/** Messages between the embedded backend (main thread) and its worker threads. */
import type { ItemErrorCode } from '../errors.js';

/** Length of every vector the worker sends (USE-lite's fixed output size). */
export const EMBEDDED_DIMENSIONS = 512;

export type ToWorker =
  | { readonly type: 'embed'; readonly id: number; readonly texts: readonly string[] }
  /** Asks the worker to stop between two model runs; it answers `cancelled` (or its result, if it was done). */
  | { readonly type: 'cancel'; readonly id: number };

export type FromWorker =
  /** One vector per text, each on its own transferred buffer. */
  | { readonly type: 'result'; readonly id: number; readonly vectors: Float32Array[] }
  | { readonly type: 'error'; readonly id: number; readonly code: ItemErrorCode; readonly message: string }
  | { readonly type: 'cancelled'; readonly id: number };
