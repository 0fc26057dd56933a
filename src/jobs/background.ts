/**
 * The one place for job control's durable timers (the scheduled-job promoter, the sweeps of
 * orphaned control records and expired idempotency keys): each task runs every `intervalMs`,
 * never two runs of one task at once, every failure logged (never an unhandled rejection),
 * and `stop()` waits for runs in progress at most `graceMs`. The timers hold nothing durable
 * themselves: what they act on is in the store, so a restart picks up where it was.
 */
import type { Logger } from '../logger.js';

interface Task {
  readonly name: string;
  readonly run: () => Promise<void>;
  readonly intervalMs: number;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

export class BackgroundTasks {
  private readonly tasks: Task[] = [];
  private stopped = false;

  constructor(private readonly log: Logger) {}

  /** Runs `run` now and then every `intervalMs` until stop(). */
  every(name: string, intervalMs: number, run: () => Promise<void>): void {
    const task: Task = { name, run, intervalMs };
    this.tasks.push(task);
    task.timer = setInterval(() => this.fire(task), intervalMs);
    task.timer.unref();
    this.fire(task);
  }

  /** Runs a task now (unless a run is already in progress): e.g. when a job it waits for has finished. */
  poke(name: string): void {
    const task = this.tasks.find((t) => t.name === name);
    if (task) this.fire(task);
  }

  private fire(task: Task): void {
    if (this.stopped || task.running) return;
    task.running = task
      .run()
      .catch((error: unknown) => this.log.warn({ task: task.name, err: error instanceof Error ? error.message : error }, 'background task failed; will run again'))
      .finally(() => (task.running = undefined));
  }

  /** Stops every timer, then waits for runs in progress, at most `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    for (const task of this.tasks) clearInterval(task.timer);
    const running = this.tasks.map((t) => t.running).filter((p): p is Promise<void> => p !== undefined);
    if (running.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all(running), bound]);
    clearTimeout(timer);
  }
}
