export interface SseEvent {
  event: string;
  id?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read the JSON fields of an event freely
  data: any;
}

export interface SseConnection {
  status: number;
  headers: Headers;
  /** The next event, or null once the server has ended the stream. Comments (heartbeats) are skipped. */
  next(timeoutMs?: number): Promise<SseEvent | null>;
  /** Reads events until the server ends the stream. */
  rest(timeoutMs?: number): Promise<SseEvent[]>;
  /** Drops the connection from the client side. */
  close(): void;
}

/** A minimal Server-Sent Events client over fetch (tests only); `data` is parsed as JSON. */
export async function openSse(url: string, options: { token?: string; headers?: Record<string, string> } = {}): Promise<SseConnection> {
  const abort = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(url, { headers, signal: abort.signal });
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ended = !reader;

  async function readBlock(): Promise<string | null> {
    while (true) {
      const boundary = buffer.indexOf('\n\n');
      if (boundary >= 0) {
        const block = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary + 2);
        return block;
      }
      if (ended || !reader) return null;
      const { value, done } = await reader.read();
      if (done) ended = true;
      else buffer += decoder.decode(value, { stream: true });
    }
  }

  async function next(timeoutMs = 10_000): Promise<SseEvent | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs)),
    );
    try {
      while (true) {
        const block = await Promise.race([readBlock(), timeout]);
        if (block === null) return null;
        const lines = block.split('\n').filter((line) => line && !line.startsWith(':'));
        if (lines.length === 0) continue;
        const field = (name: string) =>
          lines
            .find((line) => line.startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim();
        const data = lines
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n');
        return { event: field('event') ?? 'message', id: field('id'), data: data ? JSON.parse(data) : undefined };
      }
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    status: response.status,
    headers: response.headers,
    next,
    async rest(timeoutMs) {
      const events: SseEvent[] = [];
      for (let event = await next(timeoutMs); event; event = await next(timeoutMs)) events.push(event);
      return events;
    },
    close() {
      abort.abort();
    },
  };
}
