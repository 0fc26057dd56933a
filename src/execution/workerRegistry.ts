/**
 * Which processes work chunks, and for which models. Every chunk worker (a `sollol worker`,
 * or a gateway with `--workers` > 0) writes its entry every second as its own key,
 * `<prefix>worker:<id>`, with an expiry of `STALE_MS`, and names itself in the set
 * `<prefix>workers`. Liveness is Redis's key expiry, never a comparison of the worker's clock
 * with the reader's: a worker that dies (or is paused) is gone once its key expires, and the
 * readers prune its name from the set. A worker that stops removes both at once.
 *
 * Gateways read the registry to decide whether a submitted job can run now (`running`), must
 * wait for a backend (`pending`), or names a model nobody serves (400), and a front gateway
 * (`--workers 0`) reads the workers' nodes from it for /api/tags, /v1/models and /api/stats.
 */
import type { Redis } from 'ioredis';
import { canonicalModel } from '../backends/modelNames.js';
import type { NodeSnapshot } from '../backends/nodeSnapshot.js';

export const HEARTBEAT_MS = 1000;
/** A worker's entry expires this long after its last heartbeat. */
export const STALE_MS = 5000;

export interface WorkerInfo {
  readonly id: string;
  /** Models served by its healthy nodes, canonical (`x:latest`). */
  readonly models: readonly string[];
  /** The names as the nodes give them, for messages. */
  readonly modelNames: readonly string[];
  /** Whether any of its nodes is reachable. */
  readonly healthy: boolean;
  readonly concurrency: number;
  /** The worker's own clock at its heartbeat: shown, never compared. */
  readonly at: number;
  /** Its nodes as its /api/stats would show them (absent from older workers). */
  readonly nodes?: readonly NodeSnapshot[];
  /** Whether it answers sync embed requests (the interactive lane, remoteEmbed.ts). */
  readonly interactive?: boolean;
}

export class WorkerRegistry {
  private readonly setKey: string;
  private readonly prefix: string;

  constructor(private readonly redis: Redis, prefix: string) {
    this.prefix = prefix;
    this.setKey = `${prefix}workers`;
  }

  private entryKey(id: string): string {
    return `${this.prefix}worker:${id}`;
  }

  async beat(info: Omit<WorkerInfo, 'at' | 'models'>): Promise<void> {
    const entry: WorkerInfo = { ...info, models: info.modelNames.map(canonicalModel), at: Date.now() };
    await this.redis.set(this.entryKey(info.id), JSON.stringify(entry), 'PX', STALE_MS);
    await this.redis.sadd(this.setKey, info.id);
  }

  async remove(id: string): Promise<void> {
    await this.redis.del(this.entryKey(id));
    await this.redis.srem(this.setKey, id);
  }

  /** Workers whose entry has not expired; names of expired ones are pruned from the set on the way. */
  async live(): Promise<WorkerInfo[]> {
    const ids = await this.redis.smembers(this.setKey);
    const entries = await Promise.all(ids.map((id) => this.redis.get(this.entryKey(id))));
    const live: WorkerInfo[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const info = entries[i] ? parse(entries[i]!) : undefined;
      if (info) live.push(info);
      else gone.push(id);
    });
    if (gone.length > 0) await this.redis.srem(this.setKey, ...gone);
    return live;
  }
}

function parse(json: string): WorkerInfo | undefined {
  try {
    const value = JSON.parse(json) as WorkerInfo;
    return typeof value.id === 'string' && Array.isArray(value.models) ? value : undefined;
  } catch {
    return undefined;
  }
}
