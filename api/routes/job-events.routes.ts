import { Router, type Request, type RequestHandler } from 'express';
import type { EntityManager } from '@mikro-orm/postgresql';
import { finalStates, type JobRecord, type JobState } from '../../db/entities/job-record.entity.js';
import { findJob } from '../../db/jobs/find-jobs.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { takeStreamPlace } from '../concurrency-limits.js';
import { openEventStream } from '../event-stream.js';
import { jobView } from '../../db/jobs/job-view.js';
import type { JobEvent } from '../job-waiter.js';
import { notFound } from '../problems.js';
import { parseInput } from '../validate.js';
import { jobIdParams } from './jobs.routes.js';

export interface JobEventsRoutesOptions {
  /** Heartbeat comment interval, in ms; each heartbeat also re-reads the job row. Default 15,000. */
  heartbeatMs?: number;
}

/**
 * The `id:` of the last event. An EventSource that reconnects after the stream ended sends it back as
 * `Last-Event-ID`, and gets 204, which per the SSE spec tells it to stop reconnecting.
 */
export const finalEventId = 'final';

/** BullMQ events that move a job to a non-final state, and the state they mean. */
const movingStates: Partial<Record<JobEvent['event'], JobState>> = { waiting: 'queued', delayed: 'delayed', active: 'active' };

/**
 * The order a job goes through its unfinished states. An event for an earlier state than the stream's is not
 * trusted: a new reader replays the last seconds of its queue's events (api/job-waiter.ts), so one may be old.
 * Only the row moves a stream back (a retry: the attempt's failure is stored before BullMQ requeues the job).
 */
const stateOrder: Partial<Record<JobState, number>> = { delayed: 0, queued: 1, active: 2 };
const isBefore = (state: JobState, than: JobState | null) => than !== null && (stateOrder[state] ?? 0) < (stateOrder[than] ?? 0);

/**
 * `GET /jobs/:id/events`: Server-Sent Events for one job. First `event: state` with the row as
 * PostgreSQL has it; then `state` and `progress` events as BullMQ's QueueEvents report them (so a
 * worker anywhere is heard by any API process); at a final state, one last `state` event carrying the
 * whole job (as GET /jobs/:id) and the end of the stream. Final states are read from PostgreSQL, never
 * inferred from the event, because the row is the record and is written before BullMQ reports.
 */
export function jobEventsRoutes(deps: ApiDeps, options: JobEventsRoutesOptions = {}): Router {
  const router = Router();
  router.get(
    '/jobs/:id/events',
    jobEventsHandler(deps, options, (em, req, id) => findJob(em, principalOf(req).customerId, id)),
  );
  return router;
}

/** Reads the streamed job's row: the caller's own job, or (an administrator's stream) anyone's; null answers 404. */
export type StreamedJobReader = (em: EntityManager, req: Request, id: string) => Promise<JobRecord | null>;

/** The event stream of the job `readJob` finds (GET /jobs/:id/events, and GET /admin/jobs/:id/events for any customer's). */
export function jobEventsHandler(deps: ApiDeps, options: JobEventsRoutesOptions, readJob: StreamedJobReader): RequestHandler {
  return async (req, res) => {
    const principal = principalOf(req);
    // BullMQ's events name the job as it was created, in lower case; a UUID typed in upper case is the same job.
    const id = parseInput(jobIdParams, req.params, 'params').id.toLowerCase();
    const em = deps.orm.em.fork();
    const existing = await readJob(em, req, id);
    if (!existing) throw notFound(`job ${id}`);
    if (finalStates.includes(existing.state) && req.header('last-event-id') === finalEventId) {
      res.status(204).end();
      return;
    }

    // Held until the stream ends; past the tier's open streams, 429.
    await takeStreamPlace(deps.leases, deps.config, principal, res);
    const log = req.log ?? deps.logger;
    let lastState: JobState | null = null;
    // Events are handled one at a time, in arrival order, even when one needs a database read.
    let queue = Promise.resolve();
    const step = (work: () => Promise<void> | void) => {
      queue = queue.then(work).catch((error: unknown) => {
        log.error({ err: error, jobId: id }, 'job event stream failed');
        stream.close();
      });
    };

    const stream = openEventStream(res, { heartbeatMs: options.heartbeatMs, onHeartbeat: () => step(() => sendRow(false)) });

    /**
     * Reads the row and sends its state if it changed. `mayGoBack`: only when BullMQ said the job went back (a
     * retry, a hand-back): the row then says whether it did. Otherwise an earlier state in the row is the row
     * lagging behind the events (a job is written `active` only once it has run a moment), never sent.
     */
    async function sendRow(mayGoBack: boolean): Promise<void> {
      if (stream.closed) return;
      const job = await readJob(em, req, id);
      if (!job) return stream.close();
      if (finalStates.includes(job.state)) {
        stream.send('state', jobView(job), finalEventId);
        return stream.close();
      }
      if (job.state !== lastState && (mayGoBack || !isBefore(job.state, lastState))) {
        lastState = job.state;
        stream.send('state', { id, state: job.state, progress: job.progress ?? 0 });
      }
    }

    // Returns the row's read when it needs one, so the next event waits for it (events are handled in order).
    function onEvent(event: JobEvent): Promise<void> | void {
      if (event.event === 'progress') {
        stream.send('progress', { id, state: lastState ?? 'active', progress: event.data });
        return;
      }
      const moved = movingStates[event.event];
      // Final (completed, failed) or gone (removed, a cancel): the row says which.
      if (moved === undefined) return sendRow(false);
      if (moved === lastState) return;
      // Back to an earlier state: a replayed old event, or a retry; the row tells them apart.
      if (isBefore(moved, lastState)) return sendRow(true);
      lastState = moved;
      stream.send('state', { id, state: moved });
    }

    // Subscribe before the first read, so nothing that happens in between is missed.
    const unsubscribe = deps.waiter.subscribe(id, (event) => step(() => onEvent(event)));
    // On shutdown the stream ends; the client's EventSource reconnects to another API process.
    const stopOnShutdown = deps.waiter.onClose(() => stream.close());
    stream.onClose(() => {
      unsubscribe();
      stopOnShutdown();
    });
    step(() => sendRow(false));
  };
}
