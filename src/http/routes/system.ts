/** Gateway routes: /api/health, /api/stats (/api/version is with the Ollama-compatible routes). */
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { BackendPool } from '../../backends/pool.js';
import type { JobScheduler } from '../../execution/types.js';
import type { JobManager } from '../../jobs/manager.js';
import { VERSION } from '../../version.js';
import { scopeOf } from '../scope.js';

export interface SystemRouteOptions {
  readonly manager: JobManager;
  readonly pool: BackendPool;
  readonly scheduler: JobScheduler;
  readonly batchProcessing: boolean;
  readonly maxJobs: number;
  readonly jobTtlMs: number;
  readonly instanceId: string;
  readonly startedAt: number;
}

export async function systemRoutes(app: FastifyInstance, options: SystemRouteOptions): Promise<void> {
  const { manager, pool, scheduler } = options;

  app.get('/api/health', { schema: { tags: ['gateway'], summary: 'Liveness and version' } }, async () => {
    const nodes = pool.snapshot();
    const degraded = scheduler.degradedReasons?.() ?? [];
    return {
      status: degraded.length > 0 ? 'degraded' : 'ok',
      ...(degraded.length > 0 ? { degraded } : {}),
      service: 'sollol',
      version: VERSION,
      instance_id: options.instanceId,
      batch_processing: options.batchProcessing,
      backends: { healthy: nodes.filter((n) => n.healthy).length, total: nodes.length },
    };
  });

  app.get('/api/stats', { schema: { tags: ['gateway'], summary: 'Batch job counters, backends and scheduler load' } }, async (request) => {
    const c = await manager.counters(scopeOf(request));
    const load = scheduler.load();
    return {
      batch_jobs: {
        total_jobs_created: c.totalJobsCreated,
        total_jobs_completed: c.totalJobsCompleted,
        total_jobs_failed: c.totalJobsFailed,
        total_jobs_cancelled: c.totalJobsCancelled,
        active_jobs: c.activeJobs,
        pending_jobs: c.pendingJobs,
        stored_jobs: c.storedJobs,
        max_jobs: options.maxJobs,
        job_ttl_seconds: options.jobTtlMs / 1000,
        batch_processing: options.batchProcessing,
      },
      cache: await manager.cacheStats(),
      scheduler: { workers: load.workers, chunks_in_flight: load.chunksInFlight, queued_jobs: load.queuedJobs },
      backends: pool.snapshot(),
      ...(scheduler.remoteWorkers ? { workers: scheduler.remoteWorkers() } : {}),
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - options.startedAt) / 1000),
    };
  });
}
