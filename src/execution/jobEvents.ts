/**
 * The job-events port: the job manager publishes a cancel after writing the status; the
 * execution side listens and aborts in-flight calls. In-process here; the distributed mode
 * puts Redis pub/sub behind the same interface.
 */
import { EventEmitter } from 'node:events';

export interface JobEvents {
  publishCancel(jobId: string): Promise<void>;
  onCancel(listener: (jobId: string) => void): () => void;
  close(): Promise<void>;
}

export class InProcessJobEvents implements JobEvents {
  private readonly emitter = new EventEmitter();

  async publishCancel(jobId: string): Promise<void> {
    this.emitter.emit('cancel', jobId);
  }

  onCancel(listener: (jobId: string) => void): () => void {
    this.emitter.on('cancel', listener);
    return () => this.emitter.off('cancel', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
