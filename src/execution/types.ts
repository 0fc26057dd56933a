/**
 * The execution port seen from the job manager and the HTTP layer. Two implementations:
 * the embedded `Scheduler` (one process, in-memory fair queue) and the `DistributedScheduler`
 * (chunks on a BullMQ queue in Redis, worked by any number of processes). The gateway's
 * factory picks one by `config.redisUrl`; nothing above this port knows which.
 */
import type { NodeSnapshot } from '../backends/nodeSnapshot.js';
import type { EmbedOptions } from '../backends/types.js';
import type { JobRecord } from '../jobs/model.js';
import type { Priority } from '../jobs/priority.js';

/** Whether a job for a model can run now, must wait for a backend, or names an unknown model. */
export type ModelAvailability = 'served' | 'no-backend' | 'unknown-model';

/** A live worker as /api/stats shows it (from the worker registry). */
export interface RemoteWorkerView {
  readonly id: string;
  readonly healthy: boolean;
  readonly concurrency: number;
  readonly models: readonly string[];
  readonly interactive: boolean;
  readonly nodes: readonly NodeSnapshot[];
}

export interface SchedulerLoad {
  /** Chunks this process is embedding now. */
  readonly chunksInFlight: number;
  /** Embedded: jobs in the fair queue. Distributed: chunks waiting in the shared queue. */
  readonly queuedJobs: number;
  /** Most chunks this process keeps in flight. */
  readonly workers: number;
}

/** An embedding job whose admission was just asked of the store, with the request's texts (a head start). */
export interface HeadStartJob {
  readonly id: string;
  readonly model: string;
  readonly options: EmbedOptions;
  readonly documents: readonly string[];
  readonly createdAt: number;
}

export interface JobScheduler {
  /** Takes an admitted job (pending or running); a resumed job goes on where it was. */
  add(job: JobRecord): void;
  /**
   * Called just before the store is asked to admit a running embedding job (in the same turn of
   * the event loop): the scheduler may send the first chunks from the request's texts while the
   * admission commits, and may ask the store things first (its cache: those calls come before
   * the admission). It starts no call within that turn, so the admission is asked first and
   * every write a call leads to comes after it (docs/ARCHITECTURE.md, "A job's path"). `add` follows
   * once the job is admitted, {@link JobScheduler.abandonHeadStart} if it was refused or failed.
   */
  headStart?(job: HeadStartJob): void;
  /** The job of a head start was not admitted: its calls are aborted, nothing of it is kept. */
  abandonHeadStart?(jobId: string): void;
  modelAvailability(model: string): ModelAvailability;
  /** A running job's new priority (PATCH /api/batch/jobs/{id}): its share of the slots from now on. */
  setPriority?(id: string, priority: Priority): void;
  load(): SchedulerLoad;
  /** Why a job cannot progress now (no backend, store fault, failing node), if this process knows. */
  statusDetail?(jobId: string): { readonly reason: string; readonly message: string; readonly since: number } | undefined;
  start(): void | Promise<void>;
  /** Distributed mode: the live workers and their nodes, for /api/stats. */
  remoteWorkers?(): RemoteWorkerView[];
  /** Why the scheduler is degraded now (e.g. Redis unreachable); empty or absent: healthy. */
  degradedReasons?(): string[];
  /** Stops taking work, lets chunks in flight finish for a grace period, then aborts them. */
  stop(): Promise<void>;
}
