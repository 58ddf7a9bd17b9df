import type { StoredJob } from './job-columns.js';
import { isoTime } from '../../lib/iso-time.js';

const iso = (value: Date | string | null | undefined): string | undefined => (value ? isoTime(value) : undefined);

/** A job's URL in the API (`Location`, `links.self`). */
export const jobLocation = (id: string) => `/api/v1/jobs/${id}`;

/** The public shape of a job (GET /jobs/:id). */
export function jobView(job: StoredJob) {
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    progress: job.progress ?? 0,
    attempts_made: job.attemptsMade,
    ...(job.result !== null && job.result !== undefined ? { result: job.result } : {}),
    ...(job.error ? { error: job.error } : {}),
    ...(job.scheduleName ? { schedule: job.scheduleName } : {}),
    ...(job.retryOf ? { retry_of: job.retryOf } : {}),
    created_at: iso(job.createdAt) as string,
    // SPEC §9: a finished job always carries started_at. One that never ran (cancelled while queued or delayed)
    // left the queue when it finished: started_at = finished_at, a run of 0 ms.
    ...(job.startedAt || job.finishedAt ? { started_at: iso(job.startedAt ?? job.finishedAt) } : {}),
    ...(job.finishedAt ? { finished_at: iso(job.finishedAt) } : {}),
  };
}
