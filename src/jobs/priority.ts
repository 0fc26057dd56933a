/**
 * Job priorities: `low`, `normal` (the default) and `high`. One pure function gives a
 * priority's weight, the share of execution slots a job gets while others compete: a high
 * job gets four times a normal job's share, a normal one four times a low one's. Every
 * scheduler uses it: the embedded fair queue (stride scheduling, fairQueue.ts) and the
 * distributed chunk queue (BullMQ priorities, bullQueue.ts), so the two cannot disagree.
 * The sync lane (/api/embed, /v1/embeddings) never waits behind batch jobs at all.
 */

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const DEFAULT_PRIORITY: Priority = 'normal';

const WEIGHTS: Readonly<Record<Priority, number>> = { low: 1, normal: 4, high: 16 };
const MAX_WEIGHT = WEIGHTS.high;

/** Slots are shared in proportion to this weight (low 1, normal 4, high 16). */
export function priorityWeight(priority: Priority | undefined): number {
  return WEIGHTS[priority ?? DEFAULT_PRIORITY];
}

/**
 * The virtual time one unit of work costs a job of this priority: the inverse of its weight,
 * scaled so the highest priority costs 1 (high 1, normal 4, low 16). A stride scheduler
 * advances a job's pass by this much per chunk; the distributed queue spaces a job's chunk
 * priorities by it.
 */
export function priorityStride(priority: Priority | undefined): number {
  return MAX_WEIGHT / priorityWeight(priority);
}

export function isPriority(value: unknown): value is Priority {
  return typeof value === 'string' && (PRIORITIES as readonly string[]).includes(value);
}
