/**
 * The job-events port over Redis pub/sub, for the distributed mode: a cancel written to the
 * store by any gateway is published on `<prefix>events`, and every gateway and worker on the
 * same prefix hears it and aborts that job's calls in flight.
 *
 * Pub/sub is at-most-once: a process that is disconnected at that moment misses the message.
 * That costs nothing in correctness, only promptness: workers re-check the job's status before
 * every backend call and poll the status of the jobs they have calls in flight for
 * (chunkProcessor.ts), and the store drops a cancelled job's late results.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { JobEvents } from './jobEvents.js';
import { closeRedis, connectRedis } from './redisClient.js';

const CANCEL = 'cancel:';

export class RedisJobEvents implements JobEvents {
  private readonly emitter = new EventEmitter();
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private subscribed: Promise<unknown> | undefined;

  constructor(url: string, prefix: string, private readonly log: Logger) {
    this.channel = `${prefix}events`;
    this.publisher = connectRedis(url, 'command', log, 'events-pub', prefix);
    // A subscribed connection can run no other command; ioredis re-subscribes after a reconnect.
    this.subscriber = connectRedis(url, 'worker', log, 'events-sub', prefix);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel && message.startsWith(CANCEL)) this.emitter.emit('cancel', message.slice(CANCEL.length));
    });
  }

  /** Subscribes; resolves once Redis confirmed, so no cancel published afterwards is missed. */
  start(): Promise<unknown> {
    this.subscribed ??= this.subscriber.subscribe(this.channel);
    return this.subscribed;
  }

  async publishCancel(jobId: string): Promise<void> {
    // The status is already in the store: a failed publish only delays the abort (see above).
    await this.publisher.publish(this.channel, CANCEL + jobId).catch((error: unknown) => {
      this.log.warn({ job_id: jobId, err: error }, 'could not publish the cancel; workers see it at their next status check');
    });
  }

  onCancel(listener: (jobId: string) => void): () => void {
    this.emitter.on('cancel', listener);
    return () => this.emitter.off('cancel', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
    await Promise.all([closeRedis(this.subscriber), closeRedis(this.publisher)]);
  }
}
