/** GET /metrics: Prometheus text exposition (jobs, chunks, scheduler load, per-node latency, health, breakers). */
import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../../metrics.js';

export interface MetricsRouteOptions {
  readonly metrics: GatewayMetrics;
}

export async function metricsRoutes(app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  app.get('/metrics', { schema: { tags: ['gateway'], summary: 'Prometheus metrics' } }, async (_request, reply) => {
    const { contentType, body } = await options.metrics.render();
    return reply.type(contentType).send(body);
  });
}
