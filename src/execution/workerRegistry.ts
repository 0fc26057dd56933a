/**
 * Which processes work chunks, and for which models: every chunk worker (a `sollol worker`,
 * or a gateway with `--workers` > 0) writes a heartbeat into one hash, `<prefix>workers`,
 * every second. Gateways read it to decide whether a submitted job can run now (`running`),
 * must wait for a backend (`pending`), or names a model nobody serves (400), exactly as the
 * embedded gateway decides from its own pool. A worker that stops removes its entry; one
 * that dies is ignored once its heartbeat is older than `STALE_MS`, and pruned.
 */
import type { Redis } from 'ioredis';
import { canonicalModel } from '../backends/modelNames.js';

export const HEARTBEAT_MS = 1000;
const STALE_MS = 5000;

export interface WorkerInfo {
  readonly id: string;
  /** Models served by its healthy nodes, canonical (`x:latest`). */
  readonly models: readonly string[];
  /** The names as the nodes give them, for messages. */
  readonly modelNames: readonly string[];
  /** Whether any of its nodes is reachable. */
  readonly healthy: boolean;
  readonly concurrency: number;
  readonly at: number;
}

export class WorkerRegistry {
  private readonly key: string;

  constructor(private readonly redis: Redis, prefix: string) {
    this.key = `${prefix}workers`;
  }

  async beat(info: Omit<WorkerInfo, 'at' | 'models'>): Promise<void> {
    const entry: WorkerInfo = { ...info, models: info.modelNames.map(canonicalModel), at: Date.now() };
    await this.redis.hset(this.key, info.id, JSON.stringify(entry));
  }

  async remove(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }

  /** Workers with a recent heartbeat; stale entries are pruned on the way. */
  async live(now = Date.now()): Promise<WorkerInfo[]> {
    const entries = await this.redis.hgetall(this.key);
    const live: WorkerInfo[] = [];
    const stale: string[] = [];
    for (const [id, json] of Object.entries(entries)) {
      const info = parse(json);
      if (info && now - info.at < STALE_MS) live.push(info);
      else if (!info || now - info.at > 10 * STALE_MS) stale.push(id);
    }
    if (stale.length > 0) await this.redis.hdel(this.key, ...stale);
    return live;
  }
}

function parse(json: string): WorkerInfo | undefined {
  try {
    const value = JSON.parse(json) as WorkerInfo;
    return typeof value.at === 'number' && Array.isArray(value.models) ? value : undefined;
  } catch {
    return undefined;
  }
}
