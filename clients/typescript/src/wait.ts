import { sleep } from './sleep.js';
import { isFinal, type Job } from './types.js';

export interface WaitOptions {
  /** Give up after this long, in ms (rejects with a TimeoutError). Default 300,000 (5 min). */
  timeoutMs?: number;
  /** First pause between polls, in ms; each pause is 1.5× the last. Default 200. */
  initialIntervalMs?: number;
  /** Longest pause between polls, in ms. Default 5,000. */
  maxIntervalMs?: number;
  /** Called with every poll's answer (progress bars, logs). */
  onUpdate?: (job: Job) => void;
  signal?: AbortSignal;
}

/** Thrown when a wait runs out of time; the job goes on. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Polls `read` with exponential backoff until the job is final. */
export async function waitForJob(read: (signal: AbortSignal) => Promise<Job>, options: WaitOptions = {}): Promise<Job> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const deadline = Date.now() + timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let interval = options.initialIntervalMs ?? 200;
  try {
    for (;;) {
      const job = await read(signal);
      options.onUpdate?.(job);
      if (isFinal(job.state)) return job;
      await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), signal);
      interval = Math.min(interval * 1.5, options.maxIntervalMs ?? 5000);
    }
  } catch (error) {
    if (timeout.aborted && !options.signal?.aborted) throw new TimeoutError(`the job was not final within ${timeoutMs} ms`);
    throw error;
  }
}
