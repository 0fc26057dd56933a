/**
 * Chunk sizing at the tail of a job (docs/ARCHITECTURE.md, "Chunk pipeline"). While plenty
 * remains every chunk has `--chunk-size` documents. Near the end the range cut for a node is
 * what that node can finish by the time the pool as a whole would be done: the documents not
 * dispatched yet are poured over the nodes by their measured pace on top of the work each
 * already holds ("water filling"), and the node takes half of its part, so later cuts correct
 * for a pace that was misjudged. A slow node thus gets small last chunks instead of a full one
 * that the fast nodes would wait for, and every node's last call ends at about the same time.
 * Sizes shrink geometrically towards `floor`, which bounds the extra calls (a few per node per
 * job). With one node serving the model nothing is balanced: full chunks to the end.
 *
 * Hedging ({@link pickHedge}) is the last resort once nothing is left to cut: a node with
 * nothing in flight takes a duplicate of the straggling chunk it would answer clearly sooner
 * than the node holding it; the first answer recorded wins (the store counts a document only
 * while it is pending) and the other call is aborted (scheduler.ts).
 * Pure: the scheduler passes what it and the pool know.
 */

/** What sizing needs to know of one node serving the job's model. */
export interface NodePace {
  /** Node time per document (moving average); null while not measured yet. */
  readonly msPerDoc: number | null;
  /** Documents dispatched to it and not answered yet. */
  readonly docsInFlight: number;
}

export interface TailSizing {
  /** The configured chunk size: never exceeded. */
  readonly chunkSize: number;
  /** Documents of the job not dispatched yet. */
  readonly remaining: number;
  /** The node the range is cut for. */
  readonly node: NodePace;
  /** Every node serving the model, `node` included. */
  readonly nodes: readonly NodePace[];
  /** Smallest chunk cut while the node can still finish it in time. @defaultValue {@link TAIL_FLOOR} */
  readonly floor?: number;
}

/** Smallest tail chunk: below this a call's own cost outweighs the balance it buys. */
export const TAIL_FLOOR = 4;
/** Paces below this (a zero-cost node) count as this, so rates stay finite. */
const MIN_MS_PER_DOC = 1e-3;

/**
 * When the pool would be done with `remaining` more documents: the time T at which
 * Σ max(0, T − queue(n)) / ms(n) = remaining, with queue(n) = docsInFlight(n) · ms(n).
 */
export function fluidFinishMs(remaining: number, nodes: readonly NodePace[]): number {
  const paced = paces(nodes).sort((a, b) => a.queueMs - b.queueMs);
  let rate = 0;
  let weighted = 0;
  for (let k = 0; k < paced.length; k++) {
    rate += 1 / paced[k]!.ms;
    weighted += paced[k]!.queueMs / paced[k]!.ms;
    const finish = (remaining + weighted) / rate;
    if (k === paced.length - 1 || finish <= paced[k + 1]!.queueMs) return finish;
  }
  return 0;
}

/** Documents for the next range cut for `node`: in 1..min(chunkSize, remaining). */
export function tailChunkSize(sizing: TailSizing): number {
  const { chunkSize, remaining, node, nodes } = sizing;
  const most = Math.min(chunkSize, remaining);
  if (most <= 1) return Math.max(0, most);
  // One node: no other node idles while it works through its last chunks; smaller ones only cost calls.
  if (nodes.length <= 1) return most;
  const floor = Math.max(1, Math.min(sizing.floor ?? TAIL_FLOOR, most));
  const ms = paceOf(node, fastestMs(nodes));
  const finish = fluidFinishMs(remaining, nodes);
  const part = (finish - node.docsInFlight * ms) / ms;
  // Its queue already reaches past the pool's end: the least it can take.
  if (part < 1) return 1;
  return Math.max(floor, Math.min(most, Math.ceil(part / 2)));
}

function fastestMs(nodes: readonly NodePace[]): number | undefined {
  let fastest: number | undefined;
  for (const n of nodes) if (n.msPerDoc !== null && (fastest === undefined || n.msPerDoc < fastest)) fastest = n.msPerDoc;
  return fastest;
}

/** A node not measured yet counts as fast as the fastest measured one (as routing does). */
function paceOf(node: NodePace, fastest: number | undefined): number {
  return Math.max(MIN_MS_PER_DOC, node.msPerDoc ?? fastest ?? 1);
}

function paces(nodes: readonly NodePace[]): { ms: number; queueMs: number }[] {
  const fastest = fastestMs(nodes);
  return nodes.map((n) => {
    const ms = paceOf(n, fastest);
    return { ms, queueMs: Math.max(0, n.docsInFlight) * ms };
  });
}

/** A call a node holds: its documents and when it was sent (ms, any clock the caller keeps). */
export interface HeldCall {
  readonly docs: number;
  readonly sentAt: number;
}

/**
 * When each call a node holds is expected to be answered (hedging), in ms from `now` (negative: it is
 * overdue by that much), in the order they were sent: the node serves them one after the
 * other at `msPerDoc`, the first from when it was sent or when the node answered its previous
 * call (`lastAnsweredAt`), whichever is later; a call behind an overdue one starts no earlier
 * than now. (msPerDoc is measured the same way: service time counts from the previous answer.)
 */
export function queueDueMs(now: number, lastAnsweredAt: number, calls: readonly HeldCall[], msPerDoc: number): number[] {
  const ms = Math.max(MIN_MS_PER_DOC, msPerDoc);
  let due = Number.NEGATIVE_INFINITY;
  return calls.map((call, k) => {
    const start = k === 0 ? Math.max(lastAnsweredAt, call.sentAt) : Math.max(due, call.sentAt, now);
    due = start + call.docs * ms;
    return due - now;
  });
}

/** A chunk in flight that a duplicate could overtake. */
export interface Straggler {
  readonly docs: number;
  /** Expected ms until its node answers it ({@link queueDueMs}); negative: overdue. */
  readonly dueMs: number;
  /** Its own expected service time on its node (documents x that node's pace). @defaultValue 0 */
  readonly serviceMs?: number;
}

/**
 * A duplicate is worth a call when it is expected to be answered by this share of the
 * straggler's own expected time or sooner: estimates are moving averages, and a duplicate that
 * merely ties costs a call and gains nothing.
 */
export const HEDGE_GAIN = 0.7;
/** No duplicate is expected to take less than this (its own round trip on loopback, 768-dim answers). */
export const HEDGE_MIN_MS = 5;

export interface HedgeChoice {
  /** The straggler (index) to duplicate now, or -1. */
  readonly pick: number;
  /** When (ms from now) a straggler not worth a duplicate now becomes one, if any. */
  readonly recheckInMs: number | undefined;
}

/**
 * Which straggler an idle node at `idleMsPerDoc` should duplicate. A straggler is worth it when
 * the idle node would answer it within {@link HEDGE_GAIN} of its expected time, or when it is
 * overdue by more than the duplicate would take and by more than its own service time (it takes
 * twice what it should: its node is slower than measured, or stuck, and no estimate of it holds
 * any more; a call merely late by a busy gateway's turnaround is left alone). Overdue ones go first, the most overdue first; then the
 * one due last. Every straggler becomes worth it once overdue enough, hence `recheckInMs`.
 */
export function pickHedge(idleMsPerDoc: number, stragglers: readonly Straggler[]): HedgeChoice {
  const ms = Math.max(MIN_MS_PER_DOC, idleMsPerDoc);
  let pick = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  let recheckInMs: number | undefined;
  for (let i = 0; i < stragglers.length; i++) {
    const { docs, dueMs, serviceMs = 0 } = stragglers[i]!;
    const cost = Math.max(HEDGE_MIN_MS, docs * ms);
    const lateBy = Math.max(cost, serviceMs);
    const worth = dueMs >= 0 ? cost <= dueMs * HEDGE_GAIN : -dueMs >= lateBy;
    if (!worth) {
      const at = dueMs + lateBy;
      recheckInMs = recheckInMs === undefined ? at : Math.min(recheckInMs, at);
      continue;
    }
    const score = dueMs >= 0 ? dueMs : 1e12 - dueMs;
    if (score > bestScore) {
      bestScore = score;
      pick = i;
    }
  }
  return { pick, recheckInMs };
}
