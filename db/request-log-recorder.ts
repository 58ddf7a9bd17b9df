import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { copiesOf, insertRequestLogs, type NewRequestLog } from './repositories/request-logs.js';

export interface RequestLogOptions {
  /** Longest a row waits in memory before it is written, in ms. Default 1000. */
  flushIntervalMs?: number;
  /** Rows per INSERT; a full batch is written at once. Default 500. */
  batchSize?: number;
  /** Rows kept in memory awaiting a flush (also while PostgreSQL is down); beyond it new rows are dropped. Default 50,000. */
  maxBuffer?: number;
  /** Writes a batch; default `insertRequestLogs` on the entity manager. Tests swap it to make flushes fail. */
  write?: (rows: NewRequestLog[]) => Promise<unknown>;
}

/**
 * Records calls (`timestamp, customer_id, service_type, method, status_code, bytes_out`) for metering, off
 * the request path — every authenticated API call (api/request-log-observer.ts) and every scheduled run
 * (workers/schedule-ticks): `record` only pushes a row into memory; a timer writes rows in bulk every `flushIntervalMs` or as soon as `batchSize` have
 * gathered. A failed write keeps the rows for the next flush and never touches a request; the buffer is
 * bounded, so a long database outage drops rows (counted in `stats.dropped` and logged) instead of memory.
 */
export class RequestLogRecorder {
  private buffer: NewRequestLog[] = [];
  /** The rows `buffer` stands for: an entry with `copies` is that many rows. */
  private bufferedRows = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private lastDropWarning = 0;
  private readonly flushIntervalMs: number;
  private readonly batchSize: number;
  private readonly maxBuffer: number;
  private readonly write: (rows: NewRequestLog[]) => Promise<unknown>;
  /** Counters for metrics and tests. */
  readonly stats = { recorded: 0, written: 0, dropped: 0, failedFlushes: 0 };

  constructor(
    em: EntityManager,
    private readonly logger: Logger,
    options: RequestLogOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.batchSize = options.batchSize ?? 500;
    this.maxBuffer = options.maxBuffer ?? 50_000;
    this.write = options.write ?? ((rows) => insertRequestLogs(em.fork(), rows));
  }

  /** Starts the flush timer. */
  start(): this {
    this.timer ??= setInterval(() => void this.flush(), this.flushIntervalMs).unref();
    return this;
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.bufferedRows;
  }

  /**
   * Queues one row, or `row.copies` identical rows (one entry in memory, however many); never throws, never
   * waits. Rows that would take the buffer past `maxBuffer` are dropped, all of the entry's copies together.
   */
  record(row: NewRequestLog): void {
    const rows = copiesOf(row);
    if (this.bufferedRows + rows > this.maxBuffer) {
      this.stats.dropped += rows;
      if (Date.now() - this.lastDropWarning > 10_000) {
        this.lastDropWarning = Date.now();
        this.logger.warn(
          { dropped: this.stats.dropped, buffered: this.bufferedRows },
          'request-log buffer full: dropping rows (is PostgreSQL reachable?)',
        );
      }
      return;
    }
    this.buffer.push(row);
    this.bufferedRows += rows;
    this.stats.recorded += rows;
    if (this.bufferedRows >= this.batchSize && !this.flushing) setImmediate(() => void this.flush());
  }

  /**
   * Writes everything buffered now, batch by batch; resolves when done or when a write failed (the rows stay
   * buffered for the next attempt). Concurrent calls share one flush.
   */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      // Entries up to `batchSize` rows (at least one entry, whatever its copies).
      let entries = 0;
      let rows = 0;
      for (const entry of this.buffer) {
        const copies = copiesOf(entry);
        if (entries > 0 && rows + copies > this.batchSize) break;
        entries += 1;
        rows += copies;
      }
      try {
        await this.write(this.buffer.slice(0, entries));
      } catch (error) {
        this.stats.failedFlushes += 1;
        this.logger.error({ err: error, buffered: this.bufferedRows }, 'request-log flush failed; keeping the rows for the next flush');
        return;
      }
      this.buffer.splice(0, entries);
      this.bufferedRows -= rows;
      this.stats.written += rows;
    }
  }

  /** Stops the timer and writes what is left (one attempt). For shutdown. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
    if (this.bufferedRows > 0) this.logger.error({ lost: this.bufferedRows }, 'request logs could not be written before shutdown');
  }
}
