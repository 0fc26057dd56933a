/**
 * Prometheus metrics (prom-client), one registry per gateway instance so several gateways
 * in one process (the tests) never share counters. Three sources:
 * - events pushed as they happen: backend calls and circuit changes (the pool's observer),
 *   chunk outcomes (the scheduler's observer);
 * - state read at scrape time: job totals from the store (they survive restarts, so they
 *   are read, not counted here: gauges whose `collect` asks the store), scheduler load, each
 *   node's health, breaker and slots;
 * - process metrics (CPU, memory, event loop, GC), registered once per process and shared:
 *   they describe the process, and prom-client's collectors for them cannot be stopped.
 * Scope, for Prometheus: the `sollol_jobs_*` series are store-wide (every gateway on one Redis
 * reports the same figures: aggregate them with max(), never sum()); every other series is
 * this process's own (sum() over processes is the deployment's figure). The README's metrics
 * section lists both.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BackendCallEvent, NodeSnapshot, PoolObserver } from './backends/pool.js';
import type { CircuitState } from './backends/circuitBreaker.js';

/** What the scheduler reports about chunks; every method optional. */
export interface ChunkObserver {
  /** A chunk's vectors were recorded; `ms` from the backend call's start. */
  chunkDone?(documents: number, ms: number): void;
  /** A chunk failed transiently and goes back in the queue. */
  chunkRetried?(code: string): void;
  /** A chunk's documents were recorded as failed with `code`. */
  chunkFailed?(documents: number, code: string): void;
}

/** The state read at scrape time (structural, so this module depends on no class). */
export interface MetricsSources {
  readonly pool: { snapshot(): readonly NodeSnapshot[] };
  readonly scheduler: { load(): { chunksInFlight: number; queuedJobs: number; workers: number } };
  /** The store's job totals; absent on a worker (it exports no store-wide series). */
  readonly manager?: {
    counters(): Promise<{
      totalJobsCreated: number;
      totalJobsCompleted: number;
      totalJobsFailed: number;
      totalJobsCancelled: number;
      activeJobs: number;
      pendingJobs: number;
    }>;
  };
}

type StoreTotals = Awaited<ReturnType<NonNullable<MetricsSources['manager']>['counters']>>;

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];
/** Seconds: from a cached sub-millisecond answer to the default 120 s call timeout. */
const CALL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

let processRegistry: Registry | undefined;

function sharedProcessRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class GatewayMetrics implements PoolObserver, ChunkObserver {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;

  /** The store's counters, read once per scrape by whichever store-wide gauge collects first. */
  private scrape: Promise<StoreTotals | undefined> | undefined;
  /** Store-wide series (their names are kept from when they were counters, for existing dashboards); none on a worker. */
  readonly storeWideMetrics: readonly Gauge[];

  /** `storeWide: false` (a `sollol worker`): no store-wide series, only this process's own. */
  constructor(options: { readonly storeWide?: boolean } = {}) {
    this.storeWideMetrics = options.storeWide === false ? [] : [
      this.storeGauge('sollol_jobs_submitted_total', 'Batch jobs admitted (store-wide: max() across gateways)', (c) => c.totalJobsCreated),
      this.storeGauge('sollol_jobs_completed_total', 'Batch jobs that completed (store-wide)', (c) => c.totalJobsCompleted),
      this.storeGauge('sollol_jobs_failed_total', 'Batch jobs that failed (store-wide)', (c) => c.totalJobsFailed),
      this.storeGauge('sollol_jobs_cancelled_total', 'Batch jobs cancelled (store-wide)', (c) => c.totalJobsCancelled),
      this.storeGauge('sollol_jobs_active', 'Batch jobs pending or running (store-wide)', (c) => c.activeJobs),
      this.storeGauge('sollol_jobs_pending', 'Batch jobs waiting for a backend (store-wide)', (c) => c.pendingJobs),
    ];
  }

  private readonly queuedJobs = this.gauge('sollol_scheduler_queued_jobs', 'Jobs in the scheduler queue (queue depth)');
  private readonly chunksInFlight = this.gauge('sollol_scheduler_chunks_in_flight', 'Chunks being embedded now');
  private readonly workers = this.gauge('sollol_scheduler_workers', 'Most chunks this process keeps in flight');

  private readonly chunksCompleted = this.counter('sollol_chunks_completed_total', 'Chunks whose vectors were recorded');
  private readonly chunksRetried = this.counter('sollol_chunks_retried_total', 'Chunks requeued after a transient failure', ['code']);
  private readonly chunksFailed = this.counter('sollol_chunks_failed_total', 'Chunks recorded as failed', ['code']);
  private readonly documentsEmbedded = this.counter('sollol_documents_embedded_total', 'Documents embedded by batch jobs');
  private readonly documentsFailed = this.counter('sollol_documents_failed_total', 'Documents recorded as failed', ['code']);
  private readonly chunkDuration = new Histogram({
    name: 'sollol_chunk_duration_seconds',
    help: 'From a chunk\'s backend call to its vectors being recorded',
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });

  private readonly callDuration = new Histogram({
    name: 'sollol_backend_request_duration_seconds',
    help: 'Embed calls per node, by outcome (ok or the item error code)',
    labelNames: ['backend', 'outcome'],
    buckets: CALL_BUCKETS,
    registers: [this.registry],
  });
  private readonly backendDocuments = this.counter('sollol_backend_documents_total', 'Documents sent to each node in calls that succeeded', ['backend']);
  private readonly backendErrors = this.counter('sollol_backend_errors_total', 'Failed calls per node and code', ['backend', 'code']);
  private readonly circuitOpens = this.counter('sollol_backend_circuit_opens_total', 'Times a node\'s circuit breaker opened', ['backend']);
  private readonly backendHealthy = this.gauge('sollol_backend_healthy', '1 when the node answered its last health probe', ['backend']);
  private readonly circuitState = this.gauge('sollol_backend_circuit_state', '1 for the state the node\'s breaker is in', ['backend', 'state']);
  private readonly backendInFlight = this.gauge('sollol_backend_in_flight', 'Calls in flight per node', ['backend']);
  private readonly backendMaxInFlight = this.gauge('sollol_backend_max_in_flight', 'Current limit on calls in flight per node', ['backend']);
  private readonly backendLatency = this.gauge('sollol_backend_latency_seconds', 'Round trip of an embed call per node, moving average', ['backend']);

  /** Gives the scrape-time sources once they exist (the pool is built before the scheduler). */
  watch(sources: MetricsSources): void {
    this.sources = sources;
  }

  backendCall(event: BackendCallEvent): void {
    this.callDuration.observe({ backend: event.backend, outcome: event.outcome }, event.seconds);
    if (event.outcome === 'ok') this.backendDocuments.inc({ backend: event.backend }, event.documents);
    else this.backendErrors.inc({ backend: event.backend, code: event.outcome });
  }

  circuitChange(backend: string, _from: CircuitState, to: CircuitState): void {
    if (to === 'open') this.circuitOpens.inc({ backend });
  }

  chunkDone(documents: number, ms: number): void {
    this.chunksCompleted.inc();
    this.documentsEmbedded.inc(documents);
    this.chunkDuration.observe(ms / 1000);
  }

  chunkRetried(code: string): void {
    this.chunksRetried.inc({ code });
  }

  chunkFailed(documents: number, code: string): void {
    this.chunksFailed.inc({ code });
    this.documentsFailed.inc({ code }, documents);
  }

  /** The Prometheus text exposition of this gateway and the process. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.scrape = undefined;
    await this.refresh();
    const merged = Registry.merge([sharedProcessRegistry(), this.registry]);
    return { contentType: this.registry.contentType, body: await merged.metrics() };
  }

  private async refresh(): Promise<void> {
    if (!this.sources) return;
    const load = this.sources.scheduler.load();
    this.queuedJobs.set(load.queuedJobs);
    this.chunksInFlight.set(load.chunksInFlight);
    this.workers.set(load.workers);
    for (const node of this.sources.pool.snapshot()) {
      const backend = node.url;
      this.backendHealthy.set({ backend }, node.healthy ? 1 : 0);
      for (const state of CIRCUIT_STATES) this.circuitState.set({ backend, state }, node.circuit === state ? 1 : 0);
      this.backendInFlight.set({ backend }, node.in_flight);
      this.backendMaxInFlight.set({ backend }, node.max_in_flight);
      if (node.latency_ms !== null) this.backendLatency.set({ backend }, node.latency_ms / 1000);
    }
  }

  /** A gauge read from the store at scrape time (prom-client's `collect`); a store fault throws (the route answers 503). */
  private storeGauge(name: string, help: string, pick: (totals: StoreTotals) => number): Gauge {
    const metrics = this;
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        const manager = metrics.sources?.manager;
        if (!manager) return;
        metrics.scrape ??= manager.counters();
        const totals = await metrics.scrape;
        if (totals) this.set(pick(totals));
      },
    });
  }

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
}

