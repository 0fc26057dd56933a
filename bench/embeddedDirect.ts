/**
 * Baseline for `npm run bench`: the embedded model called straight through its backend,
 * with no gateway, queue or HTTP in between, so that the gateway's overhead can be read
 * off as the difference.
 */
import { seededUnit } from '../src/util/mulberry32.js';
import { createEmbeddedBackend } from '../src/backends/embedded/backend.js';

const SUBJECTS = [
  'The support team', 'Our new billing system', 'A customer in Lisbon', 'The nightly backup job',
  'Every pull request', 'The marketing department', 'This quarterly report', 'The mobile app',
  'A junior developer', 'The warehouse manager', 'Most of the survey respondents', 'The search index',
  'The city council', 'A small bakery downtown', 'The research group', 'The onboarding guide',
  'My landlord', 'The delivery driver', 'The hospital pharmacy', 'The train to Manchester',
];
const VERBS = [
  'reviewed', 'postponed', 'approved', 'rejected', 'rewrote', 'migrated', 'cancelled', 'explained',
  'measured', 'questioned', 'shipped', 'ignored', 'summarised', 'fixed', 'compared', 'recommended',
  'reported', 'translated', 'scheduled', 'simplified',
];
const OBJECTS = [
  'the password reset flow', 'the refund policy', 'an unexpected invoice', 'the database schema',
  'the holiday rota', 'a list of open questions', 'the energy bill', 'the login page',
  'the shipping estimate', 'a broken link in the newsletter', 'the privacy notice', 'the API documentation',
  'the budget for next year', 'a noisy alert', 'the seating plan', 'the recipe for sourdough bread',
  'the lease agreement', 'the weekly timetable', 'the test results', 'a slow dashboard',
];
const TAILS = [
  'before the deadline on Friday', 'after a long discussion', 'without telling anyone',
  'because the numbers did not add up', 'for the second time this month', 'with surprising care',
  'while the office was closed', 'so that new staff can find it', 'despite several complaints',
  'as part of the spring clean-up', 'in less than an hour', 'to keep the auditors happy',
  'once the rain stopped', 'after reading the feedback', 'at the request of the board',
];
const QUESTIONS = [
  'How do I reset my password?', 'Where can I download last month\'s invoice?',
  'Why was my order delayed?', 'Can I change the delivery address after paying?',
  'What time does the pharmacy open on Sundays?', 'Is there a discount for students?',
  'How long does a refund usually take?', 'Who should I contact about a billing error?',
];


function pick<T>(list: readonly T[], random: () => number): T {
  return list[Math.floor(random() * list.length)] as T;
}

function sentence(random: () => number): string {
  if (random() < 0.15) return pick(QUESTIONS, random);
  const base = `${pick(SUBJECTS, random)} ${pick(VERBS, random)} ${pick(OBJECTS, random)}`;
  return random() < 0.6 ? `${base} ${pick(TAILS, random)}.` : `${base}.`;
}

/**
 * `n` deterministic English texts of mixed length, shaped like a real batch: mostly one
 * or two sentences (queries, titles), some paragraphs, a few page-long documents.
 */
export function benchTexts(n: number): string[] {
  const random = seededUnit(0x5011011);
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const roll = random();
    const sentences = roll < 0.6 ? 1 + Math.floor(random() * 2) : roll < 0.92 ? 3 + Math.floor(random() * 6) : 12 + Math.floor(random() * 12);
    const parts: string[] = [];
    for (let s = 0; s < sentences; s++) parts.push(sentence(random));
    texts.push(parts.join(' '));
  }
  return texts;
}

/**
 * Embeds `texts` through the embedded backend alone, `threads` calls in flight, in
 * batches of `batchSize`. Each worker first gets one untimed call, so that thread start
 * and model load (about 0.4 s per worker) are not counted.
 */
export async function measureEmbeddedDirect(
  texts: string[],
  threads: number,
  batchSize: number,
): Promise<{ docsPerSecond: number; seconds: number }> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const backend = createEmbeddedBackend({ threads });
  const options = { truncate: true };
  const model = 'use-lite';
  try {
    const warmUp = texts.length > 0 ? texts.slice(0, batchSize) : ['warm up'];
    // All in flight at once, so that each goes to its own worker.
    await Promise.all(Array.from({ length: threads }, () => backend.embed({ model, inputs: warmUp, options })));

    const batches: string[][] = [];
    for (let i = 0; i < texts.length; i += batchSize) batches.push(texts.slice(i, i + batchSize));
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: threads }, async () => {
        while (next < batches.length) {
          const inputs = batches[next++] as string[];
          await backend.embed({ model, inputs, options });
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return { docsPerSecond: seconds > 0 ? texts.length / seconds : 0, seconds };
  } finally {
    await backend.close();
  }
}
