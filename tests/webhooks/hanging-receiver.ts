import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A local receiver on 127.0.0.1 that reads each request and never answers it (a hanging endpoint). */
export class HangingReceiver {
  /** Requests received so far, by path. */
  readonly received = new Map<string, number>();
  /** Requests open right now, by path, and the most ever open at once. */
  private readonly open = new Map<string, number>();
  readonly mostOpen = new Map<string, number>();
  /** The most requests ever open at once, over all paths. */
  mostOpenTotal = 0;
  private openTotal = 0;
  private readonly held: ServerResponse[] = [];
  private readonly server: Server;

  private constructor() {
    this.server = createServer((req: IncomingMessage, res) => {
      const path = req.url ?? '/';
      this.received.set(path, (this.received.get(path) ?? 0) + 1);
      const now = (this.open.get(path) ?? 0) + 1;
      this.open.set(path, now);
      this.mostOpen.set(path, Math.max(now, this.mostOpen.get(path) ?? 0));
      this.openTotal += 1;
      this.mostOpenTotal = Math.max(this.mostOpenTotal, this.openTotal);
      res.on('close', () => {
        this.open.set(path, (this.open.get(path) ?? 1) - 1);
        this.openTotal -= 1;
      });
      req.resume();
      this.held.push(res);
    });
  }

  static async start(): Promise<HangingReceiver> {
    const receiver = new HangingReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  get total(): number {
    return [...this.received.values()].reduce((sum, count) => sum + count, 0);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
