import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fluidFinishMs, tailChunkSize, type NodePace } from '../src/execution/chunkSizing.js';

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
