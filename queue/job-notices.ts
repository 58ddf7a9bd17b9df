import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { readFinishedJobNotice, type FinishedJobNotice } from '../db/jobs/job-columns.js';

/**
 * Finished-job notices. The worker's final write announces each row someone waits for (`Prefer: wait`)
 * with PostgreSQL NOTIFY in the same statement, so the notice leaves with the commit: the waiting API
 * process answers with the row as stored, without reading it back and without a hop through the worker
 * and Redis. NOTIFY payloads stop at 8,000 bytes, so a bigger row goes as its id alone and the waiter
 * reads it (the notice's shape and the SQL that sends it: db/jobs/job-columns.ts). Notices are not queued for anyone not listening; waiters also poll (api/job-waiter.ts).
 */

/** The NOTIFY channel of one deployment (its queue prefix): a plain lowercase identifier. */
export function finishedJobsChannel(queuePrefix: string): string {
  return `chrysalis_finished_${createHash('sha256').update(queuePrefix).digest('hex').slice(0, 16)}`;
}

/** How the listening connection shows in `pg_stat_activity`. */
export const listenerApplicationName = 'chrysalis-job-notices';

export interface FinishedJobListenerOptions {
  databaseUrl: string;
  channel: string;
  logger: Logger;
  onNotice(notice: FinishedJobNotice): void;
  /** Longest wait between reconnection attempts, in ms. Default 5,000. */
  maxRetryMs?: number;
}

/**
 * LISTENs for finished-job notices on a connection of its own (a listening connection cannot be
 * pooled), reconnecting with backoff when it drops; waiters poll meanwhile, so a lost notice costs at
 * most a poll interval.
 */
export class FinishedJobListener {
  private client: pg.Client | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: FinishedJobListenerOptions) {}

  /** Connects and listens; while PostgreSQL is unreachable it keeps trying in the background. */
  async start(): Promise<void> {
    await this.connect().catch((error: unknown) => {
      this.options.logger.warn({ err: error }, 'finished-job listener could not connect; retrying (waiters poll meanwhile)');
      this.scheduleReconnect(500);
    });
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.databaseUrl,
      connectionTimeoutMillis: 2000,
      keepAlive: true,
      application_name: listenerApplicationName,
    });
    const lost = (error?: Error) => {
      if (this.client !== client) return;
      this.client = null;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (!this.closed) {
        this.options.logger.warn({ err: error }, 'finished-job listener lost its connection; reconnecting (waiters poll meanwhile)');
        this.scheduleReconnect(200);
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel !== this.options.channel || !message.payload) return;
      try {
        this.options.onNotice(readFinishedJobNotice(message.payload));
      } catch (error) {
        this.options.logger.warn({ err: error }, 'unreadable finished-job notice');
      }
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`listen ${this.options.channel}`);
    } catch (error) {
      this.client = null;
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) await this.close();
  }

  private scheduleReconnect(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().catch((error: unknown) => {
        this.options.logger.warn({ err: error, retryInMs: delayMs }, 'finished-job listener could not reconnect');
        if (!this.closed) this.scheduleReconnect(Math.min(delayMs * 2, this.options.maxRetryMs ?? 5000));
      });
    }, delayMs);
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }
}
