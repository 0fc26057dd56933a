/** AbortControllers of in-flight backend calls, per job, so a cancel can abort them all. */
export class AbortRegistry {
  private readonly byJob = new Map<string, Set<AbortController>>();

  /** A controller for one call; call `done` when the call settles. */
  register(jobId: string): { signal: AbortSignal; abort: (reason: string) => void; done: () => void } {
    const controller = new AbortController();
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(controller);
    const done = (): void => {
      set.delete(controller);
      if (set.size === 0 && this.byJob.get(jobId) === set) this.byJob.delete(jobId);
    };
    return { signal: controller.signal, abort: (reason) => controller.abort(new Error(reason)), done };
  }

  /** Aborts every in-flight call of the job; returns how many. */
  abortJob(jobId: string, reason: string): number {
    const set = this.byJob.get(jobId);
    if (!set) return 0;
    this.byJob.delete(jobId);
    for (const controller of set) controller.abort(new Error(reason));
    return set.size;
  }

  abortAll(reason: string): void {
    for (const jobId of [...this.byJob.keys()]) this.abortJob(jobId, reason);
  }
}
