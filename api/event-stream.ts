import type { Response } from 'express';

export interface EventStreamOptions {
  /** Interval of the `: heartbeat` comment that keeps proxies and load balancers from closing an idle stream, in ms. Default 15,000. */
  heartbeatMs?: number;
  /** Called on every heartbeat (the job stream re-reads its row there, a safety net for missed events). */
  onHeartbeat?: () => void;
}

/** One open Server-Sent Events response. */
export interface EventStream {
  /** Writes one event; `data` is sent as one line of JSON. A no-op once closed. */
  send(event: string, data: unknown, id?: string): void;
  /** Ends the response (idempotent). */
  close(): void;
  /** Runs `cleanup` once, when the stream ends for whatever reason (our close or the client going away). */
  onClose(cleanup: () => void): void;
  readonly closed: boolean;
}

/**
 * Starts a `text/event-stream` answer: headers now, a heartbeat comment every `heartbeatMs`, and
 * cleanup callbacks when either side ends it. The client going away fires `close` on the response,
 * which is what releases listeners; nothing here waits on the client.
 */
export function openEventStream(res: Response, options: EventStreamOptions = {}): EventStream {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const cleanups: Array<() => void> = [];
  let closed = false;

  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  // no-transform: a compressing proxy would otherwise buffer the stream.
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  // nginx buffers proxied responses unless told not to.
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();

  const heartbeat = setInterval(() => {
    if (closed) return;
    res.write(': heartbeat\n\n');
    options.onHeartbeat?.();
  }, heartbeatMs);

  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  res.on('close', finish);

  return {
    send(event, data, id) {
      if (closed) return;
      // JSON.stringify never emits a raw newline, so one `data:` line always carries the whole value.
      res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close() {
      if (closed) return;
      finish();
      res.end();
    },
    onClose(cleanup) {
      if (closed) cleanup();
      else cleanups.push(cleanup);
    },
    get closed() {
      return closed;
    },
  };
}
