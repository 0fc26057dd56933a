/**
 * Generation slots: per node, at most `generationParallel` generations in flight, counted
 * apart from the embedding slots (NodeState.inFlight), so a long generation never holds a
 * slot an embed call could use, and an embedding chunk never delays a generation. Same
 * routing spirit as routing.ts: healthy nodes serving the model that can take the route;
 * nodes with an open breaker only when every candidate is open; recently failed nodes
 * second; then the node with the most free slots. Interactive (sync) generations waiting for
 * a slot get the next one before any batch item, as embed calls do (pool.ts).
 */
import { BackendError, coerceBackendError } from './errors.js';
import { generationBackend, type ForwardedResponse, type GenerationBackend, type GenerationPath } from './generation.js';
import type { NodeState } from './nodeState.js';
import { isCandidate } from './routing.js';
import { waitForGrant } from './waiters.js';

/** One granted generation slot on one node. */
export interface GenerationLease {
  readonly backendId: string;
  readonly backend: GenerationBackend;
  /**
   * Forwards one generation (at most once per lease). The node's health and breaker learn
   * from the outcome; the slot stays held until `release()`, since a streamed body is still
   * being read after this resolves.
   */
  forward(path: GenerationPath, body: string, signal?: AbortSignal): Promise<ForwardedResponse>;
  /** Gives the slot back; idempotent. */
  release(): void;
}

export interface GenerationSlotHooks {
  readonly recentFailureMs: number;
  /** A call failed on the node (the pool's own bookkeeping: health, breaker, wake-ups). */
  failed(node: NodeState, error: BackendError, started: number, model: string): void;
  /** A slot may have become free. */
  capacity(): void;
}

interface Waiter {
  readonly model: string;
  readonly path: GenerationPath;
  readonly grant: (lease: GenerationLease) => void;
}

export class GenerationSlots {
  private readonly used = new Map<NodeState, number>();
  private readonly waiters: Waiter[] = [];

  constructor(
    private readonly nodes: readonly NodeState[],
    private readonly hooks: GenerationSlotHooks,
  ) {}

  /** Whether a healthy node serves the model on this route (its slots may all be busy). */
  serves(model: string, path: GenerationPath): boolean {
    return this.nodes.some((n) => this.candidate(n, model, path));
  }

  /** Healthy nodes serving the model on any route, for error messages. */
  servedElsewhere(model: string): boolean {
    return this.nodes.some((n) => isCandidate(n, model));
  }

  /** Generation slots in use and the total, over healthy nodes (for stats). */
  inUse(node: NodeState): { parallel: number; inFlight: number } {
    return { parallel: generationBackend(node.backend)?.generationParallel ?? 0, inFlight: this.used.get(node) ?? 0 };
  }

  hasRoomFor(model: string, path: GenerationPath, avoid?: ReadonlySet<string>): boolean {
    return this.routable(model, path, avoid).some((n) => this.batchMayUse(n));
  }

  /**
   * A batch slot on the best node with a free one, or undefined. `avoid` as in the pool's
   * tryAcquire: while another healthy node serves the model on the route, only those are used.
   */
  tryAcquire(model: string, path: GenerationPath, avoid?: ReadonlySet<string>): GenerationLease | undefined {
    const best = this.routable(model, path, avoid).find((n) => this.batchMayUse(n));
    return best ? this.lease(best, model) : undefined;
  }

  /** Ids of the healthy nodes serving the model on the route (whatever their breaker or slots). */
  servingNodes(model: string, path: GenerationPath): string[] {
    return this.nodes.filter((n) => this.candidate(n, model, path)).map((n) => n.backend.id);
  }

  /**
   * A slot for a sync call: at once if one is free, else the next that frees on a node serving
   * the model, ahead of batch items. Rejects with MODEL_NOT_FOUND when no healthy node can
   * serve it, CANCELLED on abort.
   */
  acquireInteractive(model: string, path: GenerationPath, signal?: AbortSignal): Promise<GenerationLease> {
    if (!this.serves(model, path)) return Promise.reject(new BackendError('MODEL_NOT_FOUND', `model '${model}' is not served for ${path} by any reachable node`));
    const free = this.routable(model, path)[0];
    if (free) return Promise.resolve(this.lease(free, model));
    return waitForGrant<GenerationLease, Waiter>(this.waiters, (grant) => ({ model, path, grant }), signal, 'the request was aborted while waiting for a generation slot', () => {
      this.hooks.capacity();
    });
  }

  /** Hands free slots (of `node`, or any) to waiting sync calls. */
  grantWaiters(node?: NodeState): void {
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i]!;
      const target = this.routable(waiter.model, waiter.path).find((n) => node === undefined || n === node);
      if (!target) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      waiter.grant(this.lease(target, waiter.model));
    }
  }

  private candidate(node: NodeState, model: string, path: GenerationPath): boolean {
    return isCandidate(node, model) && (generationBackend(node.backend)?.canGenerate(path) ?? false);
  }

  private free(node: NodeState): number {
    return (generationBackend(node.backend)?.generationParallel ?? 0) - (this.used.get(node) ?? 0);
  }

  /** Nodes that may take a generation now, best first. */
  private routable(model: string, path: GenerationPath, avoid?: ReadonlySet<string>): NodeState[] {
    const now = Date.now();
    let candidates = this.nodes.filter((n) => this.candidate(n, model, path));
    if (avoid && avoid.size > 0) {
      const others = candidates.filter((n) => !avoid.has(n.backend.id));
      if (others.length > 0) candidates = others;
    }
    const tier = (n: NodeState): number => {
      n.breaker.refresh(now);
      if (n.breaker.state === 'open') return 2;
      return now - n.lastFailureAt < this.hooks.recentFailureMs ? 1 : 0;
    };
    const best = Math.min(...candidates.map(tier));
    return candidates
      .filter((n) => tier(n) === best && this.free(n) > 0)
      .sort((a, b) => this.free(b) - this.free(a));
  }

  private batchMayUse(node: NodeState): boolean {
    return !this.waiters.some((w) => this.candidate(node, w.model, w.path));
  }

  private lease(node: NodeState, model: string): GenerationLease {
    const backend = generationBackend(node.backend)!;
    this.used.set(node, (this.used.get(node) ?? 0) + 1);
    let released = false;
    let called = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.used.set(node, (this.used.get(node) ?? 1) - 1);
      this.grantWaiters(node);
      this.hooks.capacity();
    };
    return {
      backendId: backend.id,
      backend,
      release,
      forward: async (path, body, signal) => {
        if (called) throw new Error('a generation lease forwards one call');
        called = true;
        const started = performance.now();
        try {
          const response = await backend.forward(path, body, signal);
          if (response.status >= 500 || response.status === 429) {
            this.hooks.failed(node, new BackendError('BACKEND_UNAVAILABLE', `Backend ${backend.id} answered ${response.status}`, { status: response.status }), started, model);
          } else if (response.status < 300) {
            node.breaker.succeeded(false);
          }
          return response;
        } catch (error) {
          const failure = coerceBackendError(error, backend.id);
          if (failure.code !== 'CANCELLED') this.hooks.failed(node, failure, started, model);
          throw failure;
        }
      },
    };
  }
}
