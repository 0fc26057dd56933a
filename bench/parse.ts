/**
 * parse: the cost of reading one node answer of 64 x 768 float32 vectors (shortest float32
 * text, values of unit vectors, as Ollama and the simulated node print them; about half a
 * megabyte), in one process, old and new code in the same run:
 *  - JSON.parse: what the parser worker did per answer (TextDecoder, JSON.parse, the copy into
 *    one Float32Array); the hand-off to and from the worker (postMessage on both threads) is
 *    not included;
 *  - readOllamaEmbed: the byte reader (src/backends/embedJson.ts) the adapter now runs inline;
 *  - the same for an OpenAI-compatible `data` answer of the same vectors.
 * Best of several timed batches (the machine is shared); CPU time of this thread is what is
 * measured, since nothing waits. Target: well under 1 ms per answer for the reader.
 */
import { readOllamaEmbed, readOpenAIEmbed } from '../src/backends/embedJson.js';
import { jsonToFloat32 } from '../src/backends/vectorCheck.js';
import { float32ArrayToJson } from '../src/util/float32Json.js';
import { seededUnit } from '../src/util/mulberry32.js';
import { TextDecoder } from 'node:util';
import { fmt, verdict, type Row } from './lib.js';

const VECTORS = 64;
const DIMS = 768;
const ANSWERS = 50; // per timed batch
const BATCHES = 7;

function vectors(): Float32Array[] {
  const random = seededUnit(0x5eed);
  return Array.from({ length: VECTORS }, () => {
    const v = Float32Array.from({ length: DIMS }, () => random() * 2 - 1);
    const norm = Math.hypot(...v);
    for (let i = 0; i < DIMS; i++) v[i] = v[i]! / norm;
    return v;
  });
}

/** What the parser worker did with each answer. */
function oldParse(bytes: Uint8Array, decoder: TextDecoder): Float32Array {
  const list = (JSON.parse(decoder.decode(bytes)) as { embeddings: number[][] }).embeddings;
  const dims = list[0]!.length;
  const out = new Float32Array(list.length * dims);
  for (let i = 0; i < list.length; i++) if (jsonToFloat32(list[i]!, out, i * dims) >= 0) throw new Error('bad');
  return out;
}

/** Best milliseconds per answer over {@link BATCHES} batches of {@link ANSWERS} calls. */
function perAnswer(run: () => unknown): number {
  for (let i = 0; i < 20; i++) run(); // warm-up (JIT)
  let best = Infinity;
  for (let b = 0; b < BATCHES; b++) {
    const start = process.cpuUsage();
    for (let i = 0; i < ANSWERS; i++) run();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000 / ANSWERS);
  }
  return best;
}

export async function benchParse(): Promise<Row[]> {
  const vs = vectors();
  const texts = vs.map(float32ArrayToJson);
  const ollama = Buffer.from(`{"model":"nomic-embed-text","embeddings":[${texts.join(',')}],"total_duration":1234567,"load_duration":2345,"prompt_eval_count":640}`);
  const openai = Buffer.from(
    `{"object":"list","data":[${texts.map((t, i) => `{"object":"embedding","index":${i},"embedding":${t}}`).join(',')}],"model":"m","usage":{"prompt_tokens":640,"total_tokens":640}}`,
  );
  // Both must read exactly what JSON.parse + float32 gives.
  const decoder = new TextDecoder();
  const reference = oldParse(ollama, decoder);
  const fast = readOllamaEmbed(ollama, VECTORS);
  const fastOpenAI = readOpenAIEmbed(openai, VECTORS);
  if (!fast || !fastOpenAI) throw new Error('the byte reader refused a well-formed answer');
  for (let i = 0; i < VECTORS; i++) {
    for (let j = 0; j < DIMS; j++) {
      const want = reference[i * DIMS + j];
      if (fast.vectors[i]![j] !== want || fastOpenAI.vectors[i]![j] !== want) throw new Error(`vector ${i} element ${j} differs`);
    }
  }
  const old = perAnswer(() => oldParse(ollama, decoder));
  const now = perAnswer(() => readOllamaEmbed(ollama, VECTORS));
  const oldOpenAI = perAnswer(() => JSON.parse(openai.toString('utf8')));
  const nowOpenAI = perAnswer(() => readOpenAIEmbed(openai, VECTORS));
  const us = (ms: number): number => (ms * 1000) / VECTORS;
  return [
    ['answer size (KB)', fmt(ollama.length / 1024), `${VECTORS} x ${DIMS} float32, shortest form`],
    ['JSON.parse + float32 copy (ms/answer)', fmt(old, 3), `${fmt(us(old), 1)} us/doc; what the parser worker did, hand-off not counted`],
    ['readOllamaEmbed (ms/answer)', fmt(now, 3), `${fmt(us(now), 1)} us/doc; ${fmt(old / now, 1)}x less; target < 1 ms ${verdict(now < 1)}`],
    ['OpenAI answer, JSON.parse only (ms/answer)', fmt(oldOpenAI, 3), 'before any float32 copy'],
    ['readOpenAIEmbed (ms/answer)', fmt(nowOpenAI, 3), `${fmt(oldOpenAI / nowOpenAI, 1)}x less; target < 1 ms ${verdict(nowOpenAI < 1)}`],
  ];
}
