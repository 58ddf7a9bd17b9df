import type { RedisClient } from './redis.js';

/**
 * The machine's monotonic clock in ms (CLOCK_MONOTONIC on Linux): one clock for every process on the host,
 * so the API and a worker can time the stages of one job against each other (each process's
 * `performance.now()` counts from its own start, and the wall clock may be stepped).
 */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Where the stage marks of a job the API timed (SERVER_TIMING) are left: a hash, kept a minute. */
export const stageMarksKey = (queuePrefix: string, jobId: string): string => `${queuePrefix}:stage-marks:${jobId}`;

/**
 * When one timed job reached each stage, in ms since its request began (`origin`, on `monotonicMs`): the
 * API marks its own stages and a worker its own, each storing them in the job's hash for the bench to read.
 * A diagnostic: only a request made with SERVER_TIMING on carries an origin.
 */
export class StageMarks {
  private readonly marks: Record<string, number> = {};

  constructor(private readonly origin: number) {}

  mark(stage: string): void {
    this.marks[stage] = monotonicMs() - this.origin;
  }

  /** Best effort and not awaited: a diagnostic never fails or slows a job. */
  store(redis: RedisClient, queuePrefix: string, jobId: string): void {
    const key = stageMarksKey(queuePrefix, jobId);
    redis
      .multi()
      .hset(key, this.marks)
      .pexpire(key, 60_000)
      .exec()
      .catch(() => undefined);
  }
}
