/**
 * The backend pool: health from periodic probes and live traffic, model lists, and slots.
 * It grants a slot (a `Lease`) only when a healthy node serving the model has room, so the
 * scheduler pulls work for nodes that can take it and nothing is pushed at a busy node.
 */
import { EventEmitter } from 'node:events';
import { BackendError } from './errors.js';
import { canonicalModel } from './modelNames.js';
import type { EmbeddingBackend, EmbedRequest, EmbedResult } from './types.js';

const UNHEALTHY_PROBE_MS = 1000;

export interface NodeSnapshot {
  readonly url: string;
  readonly kind: string;
  readonly healthy: boolean;
  readonly models: readonly string[];
  readonly in_flight: number;
  readonly max_in_flight: number;
  readonly latency_ms: number | null;
  readonly calls: number;
  readonly errors: number;
  readonly last_error: string | null;
}

class NodeState {
  healthy = false;
  models = new Set<string>();
  inFlight = 0;
  latencyMs: number | null = null;
  calls = 0;
  errors = 0;
  lastError: string | null = null;
  /** The node answered with this gateway's own instance id: never used. */
  isSelf = false;
  lastProbeAt = 0;

  constructor(readonly backend: EmbeddingBackend) {}

  serves(model: string): boolean {
    return this.models.has(canonicalModel(model));
  }

  hasRoom(): boolean {
    return this.inFlight < this.backend.maxConcurrency;
  }

  recordLatency(ms: number): void {
    // Exponentially weighted, so a node that slows down gets less work within a few calls.
    this.latencyMs = this.latencyMs === null ? ms : this.latencyMs * 0.8 + ms * 0.2;
  }
}

/** One granted slot on one node; `embed` may be called once, and the slot is then free again. */
export interface Lease {
  readonly backendId: string;
  /** The node itself, for calls other than embed (e.g. forwarding /api/chat); call `release` after. */
  readonly backend: EmbeddingBackend;
  embed(request: EmbedRequest): Promise<EmbedResult>;
  /** Gives the slot back without a call. */
  release(): void;
}

export interface PoolOptions {
  readonly healthIntervalMs: number;
  /** This gateway's instance id: a node answering with it is this gateway itself and is refused. */
  readonly selfInstanceId?: string;
  /** Called when a probe changes a node's health; for logs. */
  readonly onHealthChange?: (url: string, healthy: boolean, error: string | undefined) => void;
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
  private timer: NodeJS.Timeout | undefined;
  private probing: Promise<void> | undefined;

  constructor(backends: readonly EmbeddingBackend[], private readonly options: PoolOptions) {
    this.nodes = backends.map((b) => new NodeState(b));
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
    node.lastProbeAt = Date.now();
    const result = await node.backend.probe();
    const wasHealthy = node.healthy;
    if (result.sollolInstance !== undefined && result.sollolInstance === this.options.selfInstanceId) {
      node.isSelf = true;
      node.lastError = 'this backend is the gateway itself';
    }
    node.healthy = result.healthy && !node.isSelf;
    node.models = new Set(result.models.map(canonicalModel));
    if (!result.healthy) node.lastError = result.error ?? 'unhealthy';
    if (wasHealthy !== node.healthy) this.options.onHealthChange?.(node.backend.id, node.healthy, result.error);
    if (!node.healthy) return;
    while (this.grantToWaiter(node));
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

  serves(model: string): boolean {
    return this.nodes.some((n) => n.healthy && n.serves(model));
  }

  /** Models served by healthy nodes, sorted, as the nodes name them. */
  servedModels(): string[] {
    const names = new Set<string>();
    for (const node of this.nodes) if (node.healthy) node.models.forEach((m) => names.add(m));
    return [...names].sort();
  }

  hasRoomFor(model: string): boolean {
    return this.nodes.some((n) => this.batchMayUse(n, model));
  }

  /** A batch slot on the node expected to finish soonest, or undefined when none has room. */
  tryAcquire(model: string): Lease | undefined {
    const best = this.bestNode((n) => this.batchMayUse(n, model));
    return best ? this.lease(best) : undefined;
  }

  /** Batch work never takes a slot an interactive call is waiting for. */
  private batchMayUse(node: NodeState, model: string): boolean {
    if (!node.healthy || !node.serves(model) || !node.hasRoom()) return false;
    return !this.waiters.some((w) => node.serves(w.model));
  }

  private bestNode(eligible: (node: NodeState) => boolean): NodeState | undefined {
    let best: NodeState | undefined;
    for (const node of this.nodes) {
      if (!eligible(node)) continue;
      if (!best || expectedWait(node) < expectedWait(best)) best = node;
    }
    return best;
  }

  /**
   * A slot for an interactive (sync API) call: at once if a node has room, otherwise the
   * next slot that frees on a node serving the model, ahead of every batch chunk. Rejects
   * with MODEL_NOT_FOUND when no healthy node serves the model, CANCELLED on abort.
   */
  acquireInteractive(model: string, signal?: AbortSignal): Promise<Lease> {
    if (!this.serves(model)) {
      const code = this.anyHealthy() ? 'MODEL_NOT_FOUND' : 'BACKEND_UNAVAILABLE';
      return Promise.reject(new BackendError(code, this.anyHealthy() ? `model '${model}' not found` : 'no backend is reachable'));
    }
    const free = this.bestNode((n) => n.healthy && n.serves(model) && n.hasRoom());
    if (free) return Promise.resolve(this.lease(free));
    return new Promise<Lease>((resolve, reject) => {
      const waiter: InteractiveWaiter = {
        model,
        grant: (lease) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        },
      };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        reject(new BackendError('CANCELLED', 'the request was aborted while waiting for a backend'));
        this.events.emit('capacity');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Hands a freed slot to the first interactive waiter the node can serve; true if it did. */
  private grantToWaiter(node: NodeState): boolean {
    if (!node.healthy || !node.hasRoom()) return false;
    const at = this.waiters.findIndex((w) => node.serves(w.model));
    if (at < 0) return false;
    const [waiter] = this.waiters.splice(at, 1);
    waiter!.grant(this.lease(node));
    return true;
  }

  private lease(node: NodeState): Lease {
    node.inFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      node.inFlight--;
      if (!this.grantToWaiter(node)) this.events.emit('capacity');
    };
    return {
      backendId: node.backend.id,
      backend: node.backend,
      release,
      embed: async (request) => {
        const started = performance.now();
        node.calls++;
        try {
          const result = await node.backend.embed(request);
          node.recordLatency(performance.now() - started);
          return result;
        } catch (error) {
          this.recordFailure(node, error);
          throw error;
        } finally {
          release();
        }
      },
    };
  }

  private recordFailure(node: NodeState, error: unknown): void {
    if (!(error instanceof BackendError) || error.code === 'CANCELLED') return;
    node.errors++;
    node.lastError = error.message;
    // A refused or reset connection takes the node out until a probe brings it back.
    if (error.code === 'BACKEND_UNAVAILABLE' && error.status === undefined && node.healthy) {
      node.healthy = false;
      this.options.onHealthChange?.(node.backend.id, false, error.message);
    }
  }

  snapshot(): NodeSnapshot[] {
    return this.nodes.map((n) => ({
      url: n.backend.id,
      kind: n.backend.kind,
      healthy: n.healthy,
      models: [...n.models].sort(),
      in_flight: n.inFlight,
      max_in_flight: n.backend.maxConcurrency,
      latency_ms: n.latencyMs === null ? null : Math.round(n.latencyMs * 10) / 10,
      calls: n.calls,
      errors: n.errors,
      last_error: n.lastError,
    }));
  }

  /** Nodes that turned out to be this gateway itself. */
  selfReferences(): string[] {
    return this.nodes.filter((n) => n.isSelf).map((n) => n.backend.id);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.nodes.map((n) => n.backend.close()));
  }
}

function expectedWait(node: NodeState): number {
  return (node.inFlight + 1) * (node.latencyMs ?? 1);
}
