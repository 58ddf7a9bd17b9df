import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { ChrysalisClient } from './client.js';
import { readBody } from './client.js';
import { ChrysalisProblem } from './problem.js';
import { sleep } from './sleep.js';
import { isFinal, type Job, type JobState } from './types.js';

/** One Server-Sent Event of `GET /jobs/{id}/events`. */
export type JobEvent =
  /** A state change; the last one (a final state) carries the whole job. */
  | { event: 'state'; id?: string; data: { id: string; state: JobState; progress?: unknown } & Partial<Job> }
  | { event: 'progress'; id?: string; data: { id: string; state: JobState; progress: unknown } };

export interface JobEventsOptions {
  /** Pause before reconnecting after the stream dropped, in ms (a server `retry:` overrides it). Default 1,000. */
  reconnectDelayMs?: number;
  /** Connection failures in a row before giving up (the error is thrown). Default 10. */
  maxReconnects?: number;
  signal?: AbortSignal;
}

/**
 * The job's event stream as an async iterator. A dropped connection (an API process restarting, a proxy
 * timeout) is reconnected with `Last-Event-ID`; the iterator ends after the final state, or when the server
 * answers 204 (the stream had already ended). Problems (404, 401) are thrown, not retried.
 */
export async function* jobEvents(client: ChrysalisClient, jobId: string, options: JobEventsOptions = {}): AsyncGenerator<JobEvent> {
  let lastEventId: string | undefined;
  let delayMs = options.reconnectDelayMs ?? 1000;
  let failures = 0;
  for (;;) {
    let response: Response;
    try {
      const request = new Request(`${client.baseUrl}/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
        signal: options.signal,
      });
      response = await client.fetch(await client.authorize(request));
    } catch (error) {
      if (options.signal?.aborted || ++failures > (options.maxReconnects ?? 10)) throw error;
      await sleep(delayMs, options.signal);
      continue;
    }
    if (response.status === 204) return;
    if (!response.ok || !response.body) throw ChrysalisProblem.from(response, await readBody(response));
    failures = 0;
    const messages = response.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (delayMs = ms) }));
    try {
      for await (const message of messages) {
        if (message.id) lastEventId = message.id;
        if (message.event !== 'state' && message.event !== 'progress') continue;
        const event = { event: message.event, ...(message.id ? { id: message.id } : {}), data: JSON.parse(message.data) } as JobEvent;
        yield event;
        if (event.event === 'state' && isFinal(event.data.state)) return;
      }
    } catch (error) {
      // A stream cut mid-way is what reconnecting is for; an abort by the caller is not.
      if (options.signal?.aborted) throw error;
    }
    await sleep(delayMs, options.signal);
  }
}
