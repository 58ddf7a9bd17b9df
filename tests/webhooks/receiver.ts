import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
}

/** A local webhook receiver on 127.0.0.1, port 0. Each path answers from its own script in order (then 200); every request is recorded. */
export class Receiver {
  readonly received: ReceivedRequest[] = [];
  private readonly scripts = new Map<string, Answer[]>();
  private readonly server: Server;

  private constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const answer = this.scripts.get(req.url ?? '/')?.shift() ?? { status: 200 };
        res.writeHead(answer.status, answer.headers).end('ok');
      });
    });
  }

  static async start(): Promise<Receiver> {
    const receiver = new Receiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  /** Queues the next answers at `path` (e.g. 500, 500, then the default 200). */
  answer(path: string, ...answers: Array<number | Answer>): this {
    const script = this.scripts.get(path) ?? [];
    script.push(...answers.map((a) => (typeof a === 'number' ? { status: a } : a)));
    this.scripts.set(path, script);
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Requests that reached `path`. */
  at(path: string): ReceivedRequest[] {
    return this.received.filter((request) => request.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
