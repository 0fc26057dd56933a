import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HEDGE_MIN_MS, fluidFinishMs, pickHedge, queueDueMs, tailChunkSize, type NodePace } from '../src/execution/chunkSizing.js';

const idle = (msPerDoc: number | null): NodePace => ({ msPerDoc, docsInFlight: 0 });

describe('tail chunk sizing (pure)', () => {
  it('cuts full chunks while plenty remains', () => {
    const nodes = [idle(1), idle(1), idle(1), idle(1)];
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 4000, node: nodes[0]!, nodes }), 64);
  });

  it('never exceeds the chunk size nor what remains, and cuts nothing when nothing remains', () => {
    const nodes = [idle(1)];
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 3, node: nodes[0]!, nodes }), 3);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 1, node: nodes[0]!, nodes }), 1);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 0, node: nodes[0]!, nodes }), 0);
    assert.equal(tailChunkSize({ chunkSize: 8, remaining: 100_000, node: nodes[0]!, nodes }), 8);
  });

  it('spreads the last documents over equal nodes: half of each node share, down to the floor', () => {
    const nodes = [idle(1), idle(1), idle(1), idle(1)];
    // 200 left over 4 idle nodes: 50 each, half of it now.
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 200, node: nodes[0]!, nodes }), 25);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 12, node: nodes[0]!, nodes }), 4);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 12, node: nodes[0]!, nodes, floor: 2 }), 2);
  });

  it('gives a slow node a part it finishes by the time the fast one is done', () => {
    const fast = idle(1);
    const slow = idle(10);
    // 1,100 left: the pool is done in 1,000 ms; the slow node can do 100 of them, takes 50.
    assert.ok(Math.abs(fluidFinishMs(1100, [fast, slow]) - 1000) < 1e-9);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 1100, node: slow, nodes: [fast, slow] }), 50);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 1100, node: fast, nodes: [fast, slow] }), 64);
  });

  it('counts the work a node already holds: a node whose queue reaches past the end takes one document', () => {
    const fast = idle(1);
    const busySlow: NodePace = { msPerDoc: 10, docsInFlight: 64 };
    // The fast node alone finishes 200 documents in 200 ms; the slow one is busy for 640 ms.
    assert.ok(Math.abs(fluidFinishMs(200, [fast, busySlow]) - 200) < 1e-9);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 200, node: busySlow, nodes: [fast, busySlow] }), 1);
  });

  it('treats a node not measured yet as fast as the fastest, and a zero-cost node as finite', () => {
    const known = idle(2);
    const unknown = idle(null);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 40, node: unknown, nodes: [known, unknown] }), 10);
    const zero = idle(0);
    const other = idle(0);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 1000, node: zero, nodes: [zero, other] }), 64);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 40, node: zero, nodes: [zero, other] }), 10);
  });

  it('cuts full chunks to the end when one node serves the model (nothing to balance)', () => {
    const only = idle(1);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 40, node: only, nodes: [only] }), 40);
    assert.equal(tailChunkSize({ chunkSize: 64, remaining: 100, node: only, nodes: [only] }), 64);
  });
});

describe('what a node holds, in time (pure)', () => {
  it('serves held calls one after the other from the later of its last answer and the first send', () => {
    // Sent at 0 and 5, 10 documents each at 1 ms; the node answered its previous call at 3.
    assert.deepEqual(queueDueMs(8, 3, [{ docs: 10, sentAt: 0 }, { docs: 10, sentAt: 5 }], 1), [5, 15]);
    // A call sent to an idle node starts when sent.
    assert.deepEqual(queueDueMs(2, 0, [{ docs: 4, sentAt: 1 }], 1), [3]);
    assert.deepEqual(queueDueMs(2, 0, [], 1), []);
  });

  it('reports an overdue call as negative, and a call behind it as starting no earlier than now', () => {
    assert.deepEqual(queueDueMs(30, 0, [{ docs: 10, sentAt: 0 }, { docs: 10, sentAt: 0 }], 1), [-20, 10]);
  });
});

describe('hedging decision (pure)', () => {
  it('duplicates a straggler the idle node answers well before it is due, the one due last first', () => {
    // Idle node at 1 ms/doc: 10 documents take it 10 ms.
    assert.equal(pickHedge(1, [{ docs: 10, dueMs: 40 }, { docs: 10, dueMs: 60 }]).pick, 1);
    // Due in 12 ms: a duplicate would take 10: not clearly sooner.
    assert.equal(pickHedge(1, [{ docs: 10, dueMs: 12 }]).pick, -1);
    // A fast idle node against a slow node's last chunk (10 ms/doc, 4 documents, just started).
    assert.equal(pickHedge(1, [{ docs: 4, dueMs: 40 }]).pick, 0);
    assert.equal(pickHedge(1, []).pick, -1);
  });

  it('duplicates a call overdue by more than the duplicate takes, the most overdue first', () => {
    assert.equal(pickHedge(1, [{ docs: 4, dueMs: 30 }, { docs: 4, dueMs: -10 }, { docs: 4, dueMs: -5 }]).pick, 1);
    // Overdue by 3 ms, a duplicate takes at least HEDGE_MIN_MS: not yet, but it will be.
    const notYet = pickHedge(1, [{ docs: 4, dueMs: -3 }]);
    assert.equal(notYet.pick, -1);
    assert.equal(notYet.recheckInMs, HEDGE_MIN_MS - 3);
  });

  it('leaves a call alone until it is late by its own service time too (a busy gateway makes calls a little late)', () => {
    // A slow node's 4 documents (40 ms) overdue by 6 ms: a fast duplicate would take 5, but the call is not twice late yet.
    const choice = pickHedge(1, [{ docs: 4, dueMs: -6, serviceMs: 40 }]);
    assert.equal(choice.pick, -1);
    assert.equal(choice.recheckInMs, 34);
    assert.equal(pickHedge(1, [{ docs: 4, dueMs: -41, serviceMs: 40 }]).pick, 0);
  });

  it('says when a straggler not worth a duplicate now becomes one', () => {
    // Due in 12 ms; once it is overdue by the 10 ms a duplicate takes: in 22 ms.
    assert.equal(pickHedge(1, [{ docs: 10, dueMs: 12 }]).recheckInMs, 22);
    // Tiny calls are held to the duplicate's own round trip.
    assert.equal(pickHedge(0.001, [{ docs: 1, dueMs: 1 }]).recheckInMs, 1 + HEDGE_MIN_MS);
    assert.equal(pickHedge(1, [{ docs: 4, dueMs: 40 }]).recheckInMs, undefined);
  });
});
