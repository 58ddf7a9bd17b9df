import { Router } from 'express';
import { uuidv7 } from '../../lib/uuid.js';
import { z } from 'zod';
import type { Schedule } from '../../db/entities/schedule.entity.js';
import { deleteSchedule, findSchedule, listSchedules, setSchedulePaused, upsertSchedule } from '../../db/repositories/schedules.js';
import { lastScheduleRunAt } from '../../db/jobs/schedule-runs.js';
import { existingSubstrateIds } from '../../db/repositories/substrates.js';
import { getJobDefinition, jobTypeNames } from '../../jobs/registry.js';
import {
  cronProblem,
  intervalProblem,
  maxSchedulesPerCustomer,
  peakRunsPerMinute,
  timeZoneProblem,
} from '../../queue/schedules/schedule-rules.js';
import { nextRunAt, removeScheduler, schedulerMatches, upsertScheduler } from '../../queue/schedules/user-schedulers.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, pageBound, pageOf, paginationQuery } from '../pagination.js';
import { notFound, ProblemError } from '../problems.js';
import { inputProblem, parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { refuseWhenRedisFull } from '../memory-guard.js';
import { isoTime } from '../../lib/iso-time.js';

const scheduleName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit');

export const createScheduleBody = z
  .strictObject({
    name: scheduleName,
    /** A cron expression (5 fields, or 6 with seconds), read in `tz`. */
    cron: z.string().trim().min(1).max(256).optional(),
    /** An interval in ms (at least 10,000). A new schedule's first run is immediate; a replaced or resumed one's is an interval after its last run. */
    every_ms: z.number().int().optional(),
    /** IANA time zone for `cron`. Default UTC. */
    tz: z.string().min(1).max(64).optional(),
    job: z.strictObject({ type: z.enum(jobTypeNames), payload: z.unknown().default({}) }),
  })
  .superRefine((body, ctx) => {
    if (body.cron === undefined && body.every_ms === undefined)
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give cron or every_ms' });
    if (body.cron !== undefined && body.every_ms !== undefined) {
      for (const field of ['cron', 'every_ms']) ctx.addIssue({ code: 'custom', path: [field], message: 'give cron or every_ms, not both' });
    }
    if (body.tz !== undefined && body.cron === undefined)
      ctx.addIssue({ code: 'custom', path: ['tz'], message: 'tz applies only to cron schedules' });
  });

export const listQuery = z.strictObject({ ...paginationQuery });
export const nameParams = z.object({ name: scheduleName });

/** A schedule's own URL (names are URL-safe: letters, digits, ".", "_", "-"). */
export const scheduleLocation = (name: string) => `/api/v1/schedules/${name}`;

const unprocessable = (field: string, message: string) =>
  new ProblemError('unprocessable', `${field} ${message}`, { errors: [{ field, message }] });
const iso = (value: Date | string | null): string | null => (value === null ? null : isoTime(value));

export function schedulesRoutes(deps: ApiDeps): Router {
  const router = Router();

  const view = async (schedule: Schedule) => ({
    name: schedule.name,
    cron: schedule.cron,
    every_ms: schedule.everyMs,
    tz: schedule.tz,
    job: { type: schedule.jobType, payload: schedule.payload },
    paused: schedule.paused,
    next_run_at: iso(await nextRunAt(deps.scheduleTicks, schedule)),
    created_at: iso(schedule.createdAt) as string,
    updated_at: iso(schedule.updatedAt) as string,
  });

  /**
   * Writes the schedule's scheduler into Redis. An `every_ms` one that ran before (replaced with another
   * interval, resumed, lost by Redis) next runs an interval after its last run, not at once as BullMQ would.
   */
  const startClock = async (schedule: Schedule) => {
    const lastRunAt = schedule.everyMs !== null ? await lastScheduleRunAt(deps.orm.em.fork(), schedule.customerId, schedule.name) : null;
    await upsertScheduler(deps.scheduleTicks, { ...schedule, lastRunAt });
  };

  const findOwn = async (customerId: string, name: string) => {
    const schedule = await findSchedule(deps.orm.em.fork(), customerId, name);
    if (!schedule) throw notFound(`schedule ${name}`);
    return schedule;
  };

  router.post('/schedules', async (req, res) => {
    const principal = principalOf(req);
    const body = parseInput(createScheduleBody, req.body, 'body');
    const definition = getJobDefinition(body.job.type);
    if (!definition) throw notFound(`job type ${body.job.type}`);
    if (definition.adminOnly && principal.role !== 'admin')
      throw new ProblemError('forbidden', `only administrators may schedule ${body.job.type} jobs`);
    const payload = definition.payload.safeParse(body.job.payload);
    if (!payload.success) throw inputProblem(payload.error, 'body.job.payload', `${body.job.type} payload`);
    const tz = body.tz ?? 'UTC';
    const tzProblem = timeZoneProblem(tz);
    if (tzProblem) throw unprocessable('body.tz', tzProblem);
    if (body.cron !== undefined) {
      const problem = cronProblem(body.cron, tz);
      if (problem) throw unprocessable('body.cron', problem);
    } else {
      const problem = intervalProblem(body.every_ms as number);
      if (problem) throw unprocessable('body.every_ms', problem);
    }
    // The schedule's peak of work per minute must fit the tier's budget of scheduled work on its own.
    const items = definition.workItems?.(payload.data) ?? 1;
    const runsPerMinute = peakRunsPerMinute(body.cron !== undefined ? { cron: body.cron, tz } : { everyMs: body.every_ms as number });
    const budget = deps.config.tierScheduleItemsPerMin[principal.tier];
    if (items * runsPerMinute > budget) {
      const perRun = `${items.toLocaleString('en-US')} item${items === 1 ? '' : 's'} a run`;
      throw unprocessable(
        items > budget ? 'body.job.payload' : body.cron !== undefined ? 'body.cron' : 'body.every_ms',
        `would submit ${(items * runsPerMinute).toLocaleString('en-US')} items of work in a minute (${perRun}, up to ${runsPerMinute} run${runsPerMinute === 1 ? '' : 's'} a minute); tier ${principal.tier} allows ${budget.toLocaleString('en-US')} a minute of scheduled work`,
      );
    }
    // Every substrate the job names must be the customer's now, or each run would fail on it (another customer's answers 404 too).
    const named = definition.substrateIds?.(payload.data) ?? [];
    if (named.length > 0) {
      const owned = await existingSubstrateIds(deps.orm.em.fork(), principal.customerId, named);
      const missing = named.find((id) => !owned.has(id));
      if (missing) throw notFound(`substrate ${missing}`);
    }

    refuseWhenRedisFull(deps);
    const outcome = await upsertSchedule(
      deps.orm.em.fork(),
      {
        id: uuidv7(),
        customerId: principal.customerId,
        name: body.name,
        cron: body.cron ?? null,
        everyMs: body.every_ms ?? null,
        tz,
        jobType: definition.name,
        payload: payload.data,
      },
      maxSchedulesPerCustomer,
    );
    if (outcome.kind === 'limit-reached')
      throw unprocessable('body.name', `would be a new schedule; a customer may keep at most ${maxSchedulesPerCustomer}`);
    const { schedule } = outcome;
    // The scheduler is only the clock (each tick reads the job from the row): a new job alone changes nothing in
    // Redis, and upserting an unchanged `every` scheduler whose tick is due could fire it an extra time. A new
    // schedule runs at once (an `every_ms` one) or at its next match (a cron one).
    if (!schedule.paused && !(await schedulerMatches(deps.scheduleTicks, schedule))) {
      if (outcome.kind === 'created') await upsertScheduler(deps.scheduleTicks, schedule);
      else await startClock(schedule);
    }
    if (outcome.kind === 'created') res.location(scheduleLocation(schedule.name));
    res.status(outcome.kind === 'created' ? 201 : 200).json(await view(schedule));
  });

  router.get('/schedules', async (req, res) => {
    const principal = principalOf(req);
    const query = parseInput(listQuery, req.query, 'query');
    const afterName = decodeCursor(query.cursor, scheduleName);
    const found = await listSchedules(deps.orm.em.fork(), principal.customerId, afterName, pageBound(query.limit));
    const listed = pageOf(
      found,
      (row) => row,
      (row) => row.name,
    );
    res.json({ items: await Promise.all(listed.items.map(view)), next_cursor: listed.next_cursor });
  });

  router.get('/schedules/:name', async (req, res) => {
    refuseQueryFields(req.query);
    const principal = principalOf(req);
    const { name } = parseInput(nameParams, req.params, 'params');
    res.json(await view(await findOwn(principal.customerId, name)));
  });

  router.delete('/schedules/:name', async (req, res) => {
    const principal = principalOf(req);
    const { name } = parseInput(nameParams, req.params, 'params');
    refuseBodyFields(req.body);
    const schedule = await findOwn(principal.customerId, name);
    // The scheduler goes first: a row left behind can be deleted again, a scheduler left behind would keep firing.
    await removeScheduler(deps.scheduleTicks, schedule);
    // Concurrent deletes all find the row; the one whose DELETE takes it answers 204, the others 404, as a second delete does.
    if (!(await deleteSchedule(deps.orm.em.fork(), principal.customerId, name))) throw notFound(`schedule ${name}`);
    res.status(204).end();
  });

  router.post('/schedules/:name/pause', async (req, res) => {
    const principal = principalOf(req);
    const { name } = parseInput(nameParams, req.params, 'params');
    refuseBodyFields(req.body);
    const schedule = await findOwn(principal.customerId, name);
    await removeScheduler(deps.scheduleTicks, schedule);
    const paused = await setSchedulePaused(deps.orm.em.fork(), principal.customerId, name, true);
    if (!paused) throw notFound(`schedule ${name}`);
    res.json(await view(paused));
  });

  router.post('/schedules/:name/resume', async (req, res) => {
    const principal = principalOf(req);
    const { name } = parseInput(nameParams, req.params, 'params');
    refuseBodyFields(req.body);
    const schedule = await findOwn(principal.customerId, name);
    const resumed = await setSchedulePaused(deps.orm.em.fork(), principal.customerId, name, false);
    if (!resumed) throw notFound(`schedule ${name}`);
    // Resuming a running schedule changes nothing; resuming one Redis lost puts it back. Either way an `every_ms`
    // one next runs an interval after its last run.
    if (schedule.paused || !(await schedulerMatches(deps.scheduleTicks, resumed))) await startClock(resumed);
    res.json(await view(resumed));
  });

  return router;
}
