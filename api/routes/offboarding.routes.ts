import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { Router, type Request, type Response } from 'express';
import { cancelJobRows } from '../../db/jobs/job-states.js';
import { recordAdminAction } from '../../db/repositories/admin-audit.js';
import { unfinishedJobIds } from '../../db/jobs/customer-jobs.js';
import {
  countKept,
  customerScheduleNames,
  findCustomerToDelete,
  lockOutCustomer,
  purgeCustomer,
} from '../../db/offboarding/customer-deletion.js';
import { exportCustomer, type ExportHeader } from '../../db/offboarding/customer-export.js';
import { stopCancelledJobs } from '../../queue/stop-cancelled-job.js';
import { removeScheduler } from '../../queue/schedules/user-schedulers.js';
import { principalOf, requireAdmin } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { notFound, ProblemError } from '../problems.js';
import { parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { customerParams } from './admin.routes.js';

/**
 * Exports running at once in one API process. Each holds a pooled connection (and one snapshot, which holds
 * vacuum back) for as long as its reader takes, so more would starve the pool the other routes share.
 */
const maxConcurrentExports = 1;
/** Straggling unfinished jobs (submitted between the check and the lock-out) cancelled per round. */
const cancelRound = 500;

/**
 * Tenant offboarding under /api/v1/admin (SPEC §9): export one customer's data as NDJSON, then delete the
 * customer keeping the billing evidence (db/offboarding/customer-deletion.ts says what stays).
 */
export function offboardingRoutes(deps: ApiDeps): Router {
  const router = Router();
  let exportsRunning = 0;
  const audit = (req: Request, action: string, customerId: string, details: unknown) =>
    recordAdminAction(deps.orm.em.fork(), { adminUserId: principalOf(req).userId ?? null, action, customerId, details });

  /**
   * Streams the export (gzip when the client accepts it). A 200 is sent with the header line, so an error
   * after that can only cut the stream short: a complete export ends with its `end` line.
   */
  router.get('/admin/customers/:id/export', requireAdmin, async (req, res) => {
    const { id } = parseInput(customerParams, req.params, 'params');
    refuseQueryFields(req.query);
    if (exportsRunning >= maxConcurrentExports) {
      throw new ProblemError('rate-limited', 'another customer export is running on this API process; try again once it has finished', {
        headers: { 'Retry-After': '30' },
      });
    }
    exportsRunning += 1;
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort(new Error('the client closed the export'));
    });
    let out: Writable = res;
    try {
      const header = await exportCustomer(deps.orm.em.fork(), id, (chunk) => send(out, chunk, abort.signal), {
        signal: abort.signal,
        onHeader: async (head: ExportHeader) => {
          await audit(req, 'customer.export', id, { counts: head.counts, exported_at: head.exported_at });
          out = startAnswer(req, res, id, head.exported_at);
        },
      });
      if (!header) throw notFound(`customer ${id}`);
      out.end();
    } catch (error) {
      if (!res.headersSent) throw error;
      // Too late for a problem answer: cut the stream, so the reader sees no `end` line.
      if (!abort.signal.aborted) req.log.error({ err: error, customerId: id }, 'customer export failed mid-stream');
      out.destroy();
      res.destroy();
    } finally {
      exportsRunning -= 1;
    }
  });

  /**
   * Deletes the customer (see customer-deletion.ts): 409 while it has unfinished jobs or administrators;
   * else the lock-out (its tokens answer 401 from now on, in every API process), its schedules' clocks
   * stopped, any job that slipped in meanwhile cancelled, the purge in bounded steps. Running it again on a
   * deleted customer finishes a purge that was cut short, and answers the same way.
   */
  router.delete('/admin/customers/:id', requireAdmin, async (req, res) => {
    const { id } = parseInput(customerParams, req.params, 'params');
    refuseBodyFields(req.body);
    const em = deps.orm.em.fork();
    const customer = await findCustomerToDelete(em, id);
    if (!customer) throw notFound(`customer ${id}`);
    if (customer.admins > 0) {
      throw new ProblemError('conflict', `customer ${id} has administrators; an operator's own customer cannot be deleted`, {
        errors: [{ field: 'params.id', message: 'a customer with admin users' }],
      });
    }
    const { queued, delayed, active } = customer.unfinished;
    if (customer.deletedAt === null && queued + delayed + active > 0) {
      throw new ProblemError(
        'conflict',
        `customer ${id} has ${queued + delayed + active} unfinished jobs; cancel them first (POST /api/v1/admin/jobs/cancel with {"customer_id": "${id}"}) and delete again`,
        { unfinished: customer.unfinished },
      );
    }

    const { deletedAt } = await lockOutCustomer(em, id);
    await deps.principals.invalidateCustomer(id);
    // The clocks go before the rows, as DELETE /schedules/:name does: a clock left behind would keep firing.
    for (const name of await customerScheduleNames(em, id)) await removeScheduler(deps.scheduleTicks, { customerId: id, name });
    const cancelledJobs = await cancelStragglers(deps, id);
    const { deleted, keptRequestLogs } = await purgeCustomer(em, id, { stepRows: deps.config.retentionStepRows });
    const kept = { ...(await countKept(em, id)), request_logs: keptRequestLogs };
    await audit(req, 'customer.delete', id, { deleted_at: deletedAt, cancelled_jobs: cancelledJobs, deleted, kept });
    res.json({ customer_id: id, deleted_at: deletedAt, cancelled_jobs: cancelledJobs, deleted, kept });
  });

  return router;
}

/** Writes `chunk`, waiting for the buffer to drain when it is full; rejects once the reader has gone. */
async function send(out: Writable, chunk: string, signal: AbortSignal): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain', { signal });
}

/** Sends the 200's headers; returns where the lines go (a gzip stream piped into the answer, or the answer). */
function startAnswer(req: Request, res: Response, customerId: string, exportedAt: string): Writable {
  const gzip = req.acceptsEncodings('gzip', 'identity') === 'gzip';
  res.status(200);
  res.setHeader('Content-Type', 'application/x-ndjson; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="customer-${customerId}-${exportedAt.slice(0, 10)}.ndjson"`);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Vary', 'Accept-Encoding');
  if (!gzip) return res;
  res.setHeader('Content-Encoding', 'gzip');
  const zip = createGzip();
  zip.pipe(res);
  return zip;
}

/** Cancels the customer's unfinished jobs (none unless one was submitted just before the lock-out) and takes them off their queues. */
async function cancelStragglers(deps: ApiDeps, customerId: string): Promise<number> {
  const em = deps.orm.em.fork();
  let cancelled = 0;
  for (;;) {
    const ids = await unfinishedJobIds(em, customerId, cancelRound);
    if (ids.length === 0) return cancelled;
    const jobs = await cancelJobRows(em, ids, 'cancelled: the customer was deleted');
    await stopCancelledJobs({ ...deps, queuePrefix: deps.config.queuePrefix }, jobs);
    cancelled += jobs.length;
  }
}
