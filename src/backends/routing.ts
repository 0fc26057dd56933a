/**
 * The routing rule: which nodes may take the next call for a model, best first.
 *
 * 1. Candidates are the healthy nodes that list the model.
 * 2. Candidates fall in tiers: `READY` (breaker closed or half-open, no recent failure),
 *    `SUSPECT` (a transient failure within `recentFailureMs`), `OPEN` (breaker open). Only the
 *    best tier present is used, whether or not its nodes have room right now: a chunk retried
 *    after a failure then waits for a good node rather than going back to the one that just
 *    failed, and an open breaker keeps a node out while another node can serve. When every
 *    candidate is open, they are used anyway ("panic routing", as Envoy does below its panic
 *    threshold): taking out every node would only stall jobs, and the scheduler's retry
 *    budget then decides, as it would with no breaker.
 * 3. Among nodes of that tier with room (a half-open breaker admits one trial call), the one
 *    expected to finish a typical chunk soonest goes first: documents already in flight there
 *    plus the new ones, times its measured node time per document. A fast node thus frees
 *    slots sooner and pulls proportionally more chunks; a slow one still gets work when the
 *    fast ones are full, so every node stays busy.
 */
import type { NodeState } from './nodeState.js';

const READY = 0;
const SUSPECT = 1;
const OPEN = 2;

export interface RoutingContext {
  readonly now: number;
  /** How long a transient failure makes a node second choice. */
  readonly recentFailureMs: number;
  /** Documents in a typical call (moving average over the pool). */
  readonly typicalDocs: number;
}

export function isCandidate(node: NodeState, model: string): boolean {
  return node.healthy && !node.isSelf && node.serves(model);
}

/** Nodes that may take a call for `model` now, best first; empty when none may. */
export function routableNodes(nodes: readonly NodeState[], model: string, context: RoutingContext): NodeState[] {
  const candidates = nodes.filter((n) => isCandidate(n, model));
  if (candidates.length === 0) return [];
  const tiers = candidates.map((n) => tierOf(n, context));
  const best = Math.min(...tiers);
  const usable = candidates.filter((n, i) => tiers[i] === best && hasRoom(n, context.now, best));
  const fallback = fastestMsPerDoc(nodes);
  const score = new Map(usable.map((n) => [n, expectedFinishMs(n, context.typicalDocs, fallback)]));
  return usable.sort((a, b) => score.get(a)! - score.get(b)! || a.inFlight - b.inFlight);
}

function tierOf(node: NodeState, context: RoutingContext): number {
  node.breaker.refresh(context.now);
  if (node.breaker.state === 'open') return OPEN;
  return context.now - node.lastFailureAt < context.recentFailureMs ? SUSPECT : READY;
}

function hasRoom(node: NodeState, now: number, tier: number): boolean {
  if (!node.hasRoom()) return false;
  // Panic routing ignores the breaker; otherwise a half-open breaker admits its one trial.
  return tier === OPEN || node.breaker.admits(now);
}

/**
 * When a typical chunk sent now would be done: the documents ahead of it (calls in flight,
 * and granted slots whose call has not started yet), plus its own, at the node's pace.
 * A node not measured yet is assumed as fast as the fastest, so it gets tried.
 */
export function expectedFinishMs(node: NodeState, typicalDocs: number, fallbackMsPerDoc: number): number {
  const waitingLeases = node.inFlight - node.callsInFlight;
  const docsAhead = node.inFlightDocs + waitingLeases * typicalDocs;
  return (docsAhead + typicalDocs) * (node.msPerDoc ?? fallbackMsPerDoc);
}

function fastestMsPerDoc(nodes: readonly NodeState[]): number {
  let fastest: number | undefined;
  for (const node of nodes) if (node.msPerDoc !== null && (fastest === undefined || node.msPerDoc < fastest)) fastest = node.msPerDoc;
  return fastest ?? 0;
}
