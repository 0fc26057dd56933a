/**
 * Input limits of the embedded model, applied on the main thread before a call is queued,
 * so that a rejected or cut document is known without waiting for a worker.
 */
import { BackendError } from '../errors.js';

/**
 * Default per-document limit, in UTF-16 code units (JavaScript string length).
 *
 * Why 8,000: the model's own cost is nearly flat past a short paragraph (measured on this
 * 2-core machine, one document alone: 2,000 chars 95 ms, 4,000 93 ms, 8,000 116 ms,
 * 12,000 151 ms; in batches of 32: 2,000 and 4,000 chars 88 ms per document, 8,000
 * 107 ms), but the package's tokenizer copies the rest of the string once per character,
 * so it is quadratic: 20,000 chars take 0.6 s, 30,000 2.1 s and 54,000 about 12 s, all in
 * tokenizing, and the worker is blind to cancellation meanwhile. 8,000 characters
 * (about 1,700 tokens, a few pages) stays on the flat part with margin, while the
 * Universal Sentence Encoder, trained on sentences and short paragraphs, has long stopped
 * gaining meaning from more text: averaging more pages into 512 numbers only blurs it.
 */
export const DEFAULT_MAX_CHARS = 8_000;

/** Inputs after the limit was applied, with the indices that were cut. */
export interface LimitedInputs {
  readonly texts: string[];
  readonly truncated: number[];
}

/** Cuts `text` to at most `maxChars` code units without splitting a surrogate pair. */
export function cutToLimit(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  let end = maxChars;
  const last = text.charCodeAt(end - 1);
  // A lone high surrogate would become U+FFFD in the tokenizer: drop it with its pair.
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

/**
 * Validates inputs against the model's limits: empty documents are rejected (the model
 * throws on them), over-long ones are cut when `truncate` is on and rejected otherwise.
 */
export function applyLimits(inputs: readonly string[], maxChars: number, truncate: boolean): LimitedInputs {
  const texts: string[] = [];
  const truncated: number[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const text = inputs[i];
    if (typeof text !== 'string' || text.length === 0) {
      throw new BackendError('INPUT_REJECTED', `Input ${i} is empty: the embedded model needs non-empty text`);
    }
    if (text.length > maxChars) {
      if (!truncate) {
        throw new BackendError(
          'INPUT_REJECTED',
          `Input ${i} has ${text.length} characters, over the embedded model's limit of ${maxChars}; send truncate: true to cut it`,
        );
      }
      texts.push(cutToLimit(text, maxChars));
      truncated.push(i);
    } else {
      texts.push(text);
    }
  }
  return { texts, truncated };
}
