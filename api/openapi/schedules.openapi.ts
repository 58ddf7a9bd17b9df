import { z } from 'zod';
import { jobTypeNames } from '../../jobs/registry.js';
import { createScheduleBody, listQuery, nameParams } from '../routes/schedules.routes.js';
import { documentRoute, ex, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';

export const scheduleSchema = z
  .object({
    name: z.string(),
    cron: z.string().nullable(),
    every_ms: z.int().nullable(),
    tz: z.string().describe('IANA time zone of `cron`'),
    job: z.object({ type: z.enum(jobTypeNames), payload: z.unknown() }),
    paused: z.boolean(),
    next_run_at: timestamp.nullable().describe('Null while paused'),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({
    id: 'Schedule',
    example: {
      name: 'nightly-totals',
      cron: '0 2 * * *',
      every_ms: null,
      tz: 'Europe/Paris',
      job: { type: 'invoke', payload: { substrate_id: ex.substrateId, parameters: { x: 5, y: 7 } } },
      paused: false,
      next_run_at: '2026-12-04T01:00:00.000Z',
      created_at: ex.at,
      updated_at: ex.at,
    },
  });

/** schedules.routes.ts */
export const schedulesDocs: RouteDocs = (registry) => {
  const tag = 'Schedules';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/schedules',
    summary: 'Create or replace a schedule (upsert by name)',
    description:
      "Give `cron` (with `tz`, default UTC) or `every_ms` (≥ 10,000). At most 100 schedules per customer. The job is checked whole: a substrate it names that the customer does not own answers 404, a cron that does not parse 422 naming the field at fault. A cron may use `?` (any value), `L` (last day) and `#` (nth weekday), but not `H`: cron-parser draws a new random value for it every time it reads the expression, so the runs would come at random times; it answers 422 naming `body.cron`. A new `every_ms` schedule runs at once, then every interval; replacing one with another interval (or timing) makes its next run an interval after its last run, or at once if that has passed. The jobs it creates are ordinary jobs of the customer, each run taking a point of the write rate limit. A schedule whose densest minute would submit more items of work than the tier's budget of scheduled work (a batch counts its invocations, any other job 1; default starter 1,000, pro 20,000, enterprise 200,000 a minute) answers 422 naming `body.job.payload` (one run is too big) or `body.every_ms`/`body.cron` (too frequent).",
    request: {
      body: jsonBody(createScheduleBody, {
        name: 'nightly-totals',
        cron: '0 2 * * *',
        tz: 'Europe/Paris',
        job: { type: 'invoke', payload: { substrate_id: ex.substrateId, parameters: { x: 5, y: 7 } } },
      }),
    },
    responses: {
      201: json(scheduleSchema, 'Created', {
        Location: { description: 'The schedule: /api/v1/schedules/{name}', schema: { type: 'string' } },
      }),
      200: json(scheduleSchema, 'Replaced'),
    },
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/schedules',
    summary: 'List schedules with their next run',
    request: { query: listQuery },
    responses: { 200: json(pageOf(scheduleSchema), 'A page of schedules') },
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/schedules/:name',
    summary: 'One schedule with its next run',
    description: "Another customer's schedule of that name answers 404.",
    request: { params: nameParams },
    responses: { 200: json(scheduleSchema, 'The schedule') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'delete',
    path: '/schedules/:name',
    summary: 'Delete a schedule',
    request: { params: nameParams },
    responses: { 204: noContent },
    problems: [404],
  });
  for (const action of ['pause', 'resume'] as const) {
    documentRoute(registry, {
      tag,
      method: 'post',
      path: `/schedules/:name/${action}`,
      summary: action === 'pause' ? 'Pause a schedule' : 'Resume a paused schedule',
      description:
        action === 'pause'
          ? 'Removes its pending run; `next_run_at` is null until it is resumed.'
          : 'A cron schedule next runs at its next match; an `every_ms` one an interval after its last run, or at once if that has passed.',
      request: { params: nameParams },
      responses: { 200: json(scheduleSchema, 'The schedule') },
      problems: [404],
    });
  }
};
