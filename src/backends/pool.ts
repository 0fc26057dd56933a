/**
 * The backend pool: health from periodic probes and live traffic, model lists, circuit
 * breakers, and slots. It grants a slot (a `Lease`) only when a node serving the model may
 * take a call (routing.ts says which, best first), so the scheduler pulls work for nodes
 * that can take it and nothing is pushed at a busy or failing node.
 *
 * Failover: a call that fails transiently (connection refused or reset, timeout, 5xx, 429)
 * makes its node second choice for `recentFailureMs`, so the scheduler's retry lands on
 * another node when there is one; a connection failure takes the node out until a probe
 * finds it again; repeated failures open its breaker (circuitBreaker.ts). A node that
 * answers 404 for a model it listed loses that model until its next probe, so chunks for it
 * go to the nodes that have it.
 */
import { EventEmitter } from 'node:events';
import { DEFAULT_BREAKER_OPTIONS, type BreakerOptions, type CircuitState } from './circuitBreaker.js';
import { BackendError } from './errors.js';
import { failureKind } from './failureKind.js';
import type { GenerationPath } from './generation.js';
import { GenerationSlots, type GenerationLease } from './generationSlots.js';
import { canonicalModel } from './modelNames.js';
import { snapshotOf, type NodeSnapshot } from './nodeSnapshot.js';
import { NodeState } from './nodeState.js';
import { isCandidate, routableNodes, type RoutingContext } from './routing.js';
import { checkAnswer } from './vectorCheck.js';
import { waitForGrant } from './waiters.js';
import type { EmbeddingBackend, EmbedRequest, EmbedResult } from './types.js';

export type { NodeSnapshot } from './nodeSnapshot.js';
export type { GenerationLease } from './generationSlots.js';

const UNHEALTHY_PROBE_MS = 1000;
/** Longer than the scheduler's first retry backoffs (200 ms, 400 ms), so retries go elsewhere. */
const DEFAULT_RECENT_FAILURE_MS = 1000;

/** One granted slot on one node; `embed` may be called once, and the slot is then free again. */
export interface Lease {
  readonly backendId: string;
  /** The node itself, for calls other than embed (e.g. forwarding /api/chat); call `release` after. */
  readonly backend: EmbeddingBackend;
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /** Gives the slot back without a call. */
  release(): void;
}

/** How a granted slot will be used. */
export interface LeaseUse {
  /**
   * The call duplicates one already in flight elsewhere (a hedge at a job's tail,
   * chunkSizing.ts): its failure is counted in the node's figures but held against neither its
   * health nor its breaker (the original call's outcome decides what becomes of the documents,
   * and a retry of a failing chunk may come to this node too: it is charged then). Its abort,
   * like any, is no failure.
   */
  readonly duplicate?: boolean;
}

/** One finished backend call, for metrics. */
export interface BackendCallEvent {
  readonly backend: string;
  readonly documents: number;
  readonly seconds: number;
  /** `ok`, or the item error code. */
  readonly outcome: string;
}

/** Receives what the pool observes; every method optional, none may throw. */
export interface PoolObserver {
  backendCall?(event: BackendCallEvent): void;
  circuitChange?(backend: string, from: CircuitState, to: CircuitState): void;
}

export interface PoolOptions {
  readonly healthIntervalMs: number;
  /** This gateway's instance id: a node answering with it is this gateway itself and is refused. */
  readonly selfInstanceId?: string;
  /** Called when a probe or a failed call changes a node's health; for logs. */
  readonly onHealthChange?: (url: string, healthy: boolean, error: string | undefined) => void;
  /** Called when a node's circuit breaker changes state; for logs. */
  readonly onCircuitChange?: (url: string, from: CircuitState, to: CircuitState) => void;
  /** Circuit breaker settings. @defaultValue DEFAULT_BREAKER_OPTIONS */
  readonly breaker?: Partial<BreakerOptions>;
  /** How long a transient failure makes a node second choice. @defaultValue 1000 */
  readonly recentFailureMs?: number;
  readonly observer?: PoolObserver;
}

interface InteractiveWaiter {
  readonly model: string;
  readonly grant: (lease: Lease) => void;
}

export class BackendPool {
  private readonly nodes: NodeState[];
  /** Interactive (sync API) calls waiting for a slot: they get the next free one before any batch chunk. */
  private readonly waiters: InteractiveWaiter[] = [];
  private readonly events = new EventEmitter();
  private readonly recentFailureMs: number;
  /** Documents in a typical call, moving average: routing's unit of work. */
  private typicalDocs = 1;
  private timer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private probing: Promise<void> | undefined;
  private closed = false;
  /** Generation slots, apart from the embedding slots (generationSlots.ts). */
  private readonly generation: GenerationSlots;

  constructor(backends: readonly EmbeddingBackend[], private readonly options: PoolOptions) {
    const breaker = { ...DEFAULT_BREAKER_OPTIONS, ...options.breaker };
    this.recentFailureMs = options.recentFailureMs ?? DEFAULT_RECENT_FAILURE_MS;
    this.nodes = backends.map(
      (b) => new NodeState(b, breaker, (from, to) => this.onCircuitChange(b.id, from, to)),
    );
    this.generation = new GenerationSlots(this.nodes, {
      recentFailureMs: this.recentFailureMs,
      failed: (node, error, started, model) => {
        // Counted as a call of no documents, so the embedding figures (ms per document) stay apart.
        node.callStarted(0);
        this.recordFailure(node, error, 0, started, false, model);
      },
      capacity: () => this.events.emit('capacity'),
    });
  }

  /**
   * Probes every node once, then keeps probing: healthy nodes every `healthIntervalMs`,
   * unhealthy ones every second, so a node that comes back (or starts after the gateway)
   * is used within a second and pending jobs start.
   */
  async start(): Promise<void> {
    await this.probeAll();
    const tick = Math.min(UNHEALTHY_PROBE_MS, this.options.healthIntervalMs);
    this.timer = setInterval(() => void this.probeDue(), tick);
    this.timer.unref();
  }

  private async probeDue(): Promise<void> {
    const now = Date.now();
    const due = this.nodes.filter((n) => now - n.lastProbeAt >= (n.healthy ? this.options.healthIntervalMs : UNHEALTHY_PROBE_MS));
    await Promise.all(due.map((node) => this.probe(node)));
  }

  /** Probes all nodes; concurrent callers share one round. */
  probeAll(): Promise<void> {
    this.probing ??= Promise.all(this.nodes.map((node) => this.probe(node)))
      .then(() => undefined)
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  private async probe(node: NodeState): Promise<void> {
    const startedAt = Date.now();
    node.lastProbeAt = startedAt;
    const result = await node.backend.probe();
    if (this.closed) return;
    // Good news from before a call failed on the node is stale: the next probe decides.
    if (result.healthy && !node.healthy && node.lastFailureAt >= startedAt) return;
    const wasHealthy = node.healthy;
    if (result.sollolInstance !== undefined && result.sollolInstance === this.options.selfInstanceId) {
      node.isSelf = true;
      node.lastError = 'this backend is the gateway itself';
    }
    node.healthy = result.healthy && !node.isSelf;
    // A fresh model list also gives back a model the node refused since the last probe.
    node.models = new Set(result.models.map(canonicalModel));
    if (node.healthy) node.listedModels = new Set(node.models);
    if (!result.healthy) node.lastError = result.error ?? 'unhealthy';
    if (wasHealthy !== node.healthy) this.options.onHealthChange?.(node.backend.id, node.healthy, result.error);
    if (!node.healthy) return;
    node.breaker.probeSucceeded();
    this.grantWaiters(node);
    this.generation.grantWaiters(node);
    this.events.emit('capacity');
  }

  /** Runs `listener` whenever a slot may have become available. */
  onCapacity(listener: () => void): () => void {
    this.events.on('capacity', listener);
    return () => this.events.off('capacity', listener);
  }

  anyHealthy(): boolean {
    return this.nodes.some((n) => n.healthy);
  }

  /** Whether a healthy node lists the model (its breaker may be open: it still counts, see routing.ts). */
  serves(model: string): boolean {
    return this.nodes.some((n) => n.healthy && n.serves(model));
  }

  /**
   * Whether `model` can be served now (`served`), is served only by nodes that are down now,
   * each of which listed it on its last healthy probe, or no node is up at all (`no-backend`:
   * a job waits, a sync call is 503), or no node up or down serves it (`unknown-model`: 404).
   */
  availability(model: string): 'served' | 'no-backend' | 'unknown-model' {
    if (this.serves(model)) return 'served';
    if (!this.anyHealthy() || this.nodes.some((n) => n.listedWhileDown(model))) return 'no-backend';
    return 'unknown-model';
  }

  /** Models served by healthy nodes, sorted, as the nodes name them. */
  servedModels(): string[] {
    const names = new Set<string>();
    for (const node of this.nodes) if (node.healthy) node.models.forEach((m) => names.add(m));
    return [...names].sort();
  }

  /** Whether a batch slot may be granted now (on a node not in `avoid`, when another node serves the model). */
  hasRoomFor(model: string, avoid?: ReadonlySet<string>): boolean {
    return this.routable(model, avoid).some((n) => this.batchMayUse(n));
  }

  /**
   * A batch slot on the node expected to finish soonest, or undefined when none may take one.
   * `avoid`: ids of nodes that already failed this work; while another healthy node serves the
   * model only those are used (so a suspect document is tried elsewhere before it fails).
   */
  tryAcquire(model: string, avoid?: ReadonlySet<string>, use: LeaseUse = {}): Lease | undefined {
    const best = this.routable(model, avoid).find((n) => this.batchMayUse(n));
    return best ? this.lease(best, use.duplicate === true) : undefined;
  }

  /** Ids of the healthy nodes listing `model` (whatever their breaker). */
  servingNodes(model: string): string[] {
    return this.nodes.filter((n) => isCandidate(n, model)).map((n) => n.backend.id);
  }

  /** Whether the node's breaker is open: its recent calls all failed (a sick node, not a bad document). */
  circuitOpen(backendId: string): boolean {
    const node = this.nodes.find((n) => n.backend.id === backendId);
    if (!node) return false;
    node.breaker.refresh(Date.now());
    return node.breaker.state === 'open';
  }

  private routable(model: string, avoid?: ReadonlySet<string>): NodeState[] {
    const context: RoutingContext = { now: Date.now(), recentFailureMs: this.recentFailureMs, typicalDocs: this.typicalDocs };
    if (avoid && avoid.size > 0) {
      const others = this.nodes.filter((n) => !avoid.has(n.backend.id));
      if (others.some((n) => isCandidate(n, model))) return routableNodes(others, model, context);
    }
    return routableNodes(this.nodes, model, context);
  }

  /** Batch work never takes a slot an interactive call is waiting for. */
  private batchMayUse(node: NodeState): boolean {
    return !this.waiters.some((w) => node.serves(w.model));
  }

  /**
   * A slot for an interactive (sync API) call: at once if a node may take it, otherwise the
   * next slot that frees on a node serving the model, ahead of every batch chunk. Rejects
   * with MODEL_NOT_FOUND or BACKEND_UNAVAILABLE as `availability` says, CANCELLED on abort.
   */
  acquireInteractive(model: string, signal?: AbortSignal): Promise<Lease> {
    const availability = this.availability(model);
    if (availability !== 'served') {
      const unknown = availability === 'unknown-model';
      return Promise.reject(new BackendError(unknown ? 'MODEL_NOT_FOUND' : 'BACKEND_UNAVAILABLE', unknown ? `model '${model}' not found` : `no backend serving model '${model}' is reachable`));
    }
    const free = this.routable(model)[0];
    if (free) return Promise.resolve(this.lease(free));
    return waitForGrant<Lease, InteractiveWaiter>(this.waiters, (grant) => ({ model, grant }), signal, 'the request was aborted while waiting for a backend', () => {
      this.events.emit('capacity');
    });
  }

  /** Hands slots of `node` (or any node, when undefined) to interactive waiters the routing rule sends there. */
  private grantWaiters(node?: NodeState): void {
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i]!;
      const target = this.routable(waiter.model).find((n) => node === undefined || n === node);
      if (!target) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      waiter.grant(this.lease(target));
    }
  }

  private lease(node: NodeState, duplicate = false): Lease {
    node.inFlight++;
    // A half-open breaker's one trial is taken when the slot is granted, not when the call starts.
    const trial = node.breaker.callStarted(Date.now());
    let released = false;
    let called = false;
    const release = (): void => {
      if (released) return;
      released = true;
      node.inFlight--;
      if (!called) node.breaker.released(trial);
      this.grantWaiters(node);
      this.events.emit('capacity');
    };
    return {
      backendId: node.backend.id,
      backend: node.backend,
      release,
      embed: async (request) => {
        called = true;
        try {
          return await this.call(node, request, trial, duplicate);
        } finally {
          release();
        }
      },
    };
  }

  private async call(node: NodeState, request: EmbedRequest, trial: boolean, duplicate: boolean): Promise<EmbedResult> {
    const docs = request.inputs.length;
    node.callStarted(docs);
    this.typicalDocs = this.typicalDocs * 0.8 + docs * 0.2;
    const started = performance.now();
    try {
      const result = await node.backend.embed(request);
      // Every backend's answer meets the same rule before anyone uses it; a bad one counts against the node.
      checkAnswer(node.backend.id, result.vectors, docs, request.options.dimensions);
      node.callSucceeded(docs, started, performance.now());
      node.breaker.succeeded(trial);
      this.observe(node, docs, started, 'ok');
      return result;
    } catch (error) {
      this.recordFailure(node, error, docs, started, trial, request.model, duplicate);
      throw error;
    }
  }

  private recordFailure(node: NodeState, error: unknown, docs: number, started: number, trial: boolean, model: string, duplicate = false): void {
    const ended = performance.now();
    const code = error instanceof BackendError ? error.code : 'BACKEND_UNAVAILABLE';
    if (code === 'CANCELLED') {
      node.callAborted(docs, ended);
      node.breaker.released(trial);
      return;
    }
    const kind = failureKind(error);
    const message = error instanceof Error ? error.message : String(error);
    // A duplicate's failure is counted, but held against neither the node's health nor its breaker.
    node.callFailed(docs, ended, code, message, duplicate ? undefined : kind);
    this.observe(node, docs, started, code);
    if (kind === undefined || duplicate) {
      node.breaker.released(trial);
      // The node does not have the model after all: route it elsewhere until the next probe.
      if (code === 'MODEL_NOT_FOUND') node.dropModel(model);
      return;
    }
    node.lastFailureAt = Date.now();
    node.breaker.failed(trial, kind, node.lastFailureAt);
    this.scheduleWake();
    // A refused or reset connection takes the node out until a probe brings it back.
    if (kind === 'connection' && node.healthy) {
      node.healthy = false;
      this.options.onHealthChange?.(node.backend.id, false, message);
    }
  }

  private observe(node: NodeState, docs: number, started: number, outcome: string): void {
    const seconds = (performance.now() - started) / 1000;
    this.options.observer?.backendCall?.({ backend: node.backend.id, documents: docs, seconds, outcome });
  }

  private onCircuitChange(backend: string, from: CircuitState, to: CircuitState): void {
    this.options.observer?.circuitChange?.(backend, from, to);
    this.options.onCircuitChange?.(backend, from, to);
    // A breaker that half-opens or closes frees a slot for waiting work.
    if (to !== 'open') queueMicrotask(() => this.events.emit('capacity'));
  }

  /**
   * Chunks held back by a node's recent failure or open breaker wait for a capacity event:
   * make sure one comes when the earliest failure window ends or a breaker may half-open.
   */
  private scheduleWake(): void {
    if (this.closed) return;
    const now = Date.now();
    let at = Number.POSITIVE_INFINITY;
    for (const n of this.nodes) {
      const windowEnd = n.lastFailureAt + this.recentFailureMs;
      if (windowEnd > now) at = Math.min(at, windowEnd);
      const reopens = n.breaker.reopensAt;
      if (reopens !== undefined) at = Math.min(at, reopens);
    }
    if (!Number.isFinite(at) || at >= this.wakeAt) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAt = Number.POSITIVE_INFINITY;
      const wokeAt = Date.now();
      for (const n of this.nodes) n.breaker.refresh(wokeAt);
      this.grantWaiters();
      this.generation.grantWaiters();
      this.events.emit('capacity');
      this.scheduleWake();
    }, Math.max(0, at - now) + 1);
    this.wakeTimer.unref();
  }

  // ---- generation (one item per call, on generation slots: generationSlots.ts) ----

  /** Whether a healthy node can serve a generation of `model` on `path`. */
  servesGeneration(model: string, path: GenerationPath): boolean {
    return this.generation.serves(model, path);
  }

  hasGenerationRoomFor(model: string, path: GenerationPath, avoid?: ReadonlySet<string>): boolean {
    return this.generation.hasRoomFor(model, path, avoid);
  }

  /** A batch generation slot, or undefined when none is free (`avoid` as in tryAcquire). */
  tryAcquireGeneration(model: string, path: GenerationPath, avoid?: ReadonlySet<string>): GenerationLease | undefined {
    return this.generation.tryAcquire(model, path, avoid);
  }

  /** Ids of the healthy nodes serving generations of `model` on `path` (servingNodes for generation). */
  servingGenerationNodes(model: string, path: GenerationPath): string[] {
    return this.generation.servingNodes(model, path);
  }

  /** A generation slot for a sync call, ahead of batch items (see GenerationSlots.acquireInteractive). */
  acquireGeneration(model: string, path: GenerationPath, signal?: AbortSignal): Promise<GenerationLease> {
    return this.generation.acquireInteractive(model, path, signal);
  }

  /** Each node as `/api/stats` shows it. */
  snapshot(): NodeSnapshot[] {
    const now = Date.now();
    return this.nodes.map((n) => {
      const slots = this.generation.inUse(n);
      return { ...snapshotOf(n, now), generation_parallel: slots.parallel, generation_in_flight: slots.inFlight };
    });
  }

  /** The node with this display id, for calls other than embed (tags, ps). */
  backend(id: string): EmbeddingBackend | undefined {
    return this.nodes.find((n) => n.backend.id === id)?.backend;
  }

  /** Nodes that turned out to be this gateway itself. */
  selfReferences(): string[] {
    return this.nodes.filter((n) => n.isSelf).map((n) => n.backend.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    await Promise.all(this.nodes.map((n) => n.backend.close()));
  }
}
