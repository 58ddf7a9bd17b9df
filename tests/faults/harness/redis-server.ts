import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, redisAnswers } from '../../../ops/local-services.js';
import { waitFor } from '../../helpers/http.js';

/**
 * A redis-server of the suite's own, on a spare port, with no persistence (`--save '' --appendonly no`):
 * a restart comes back empty, as a Redis that lost its data would. It keeps its port across restarts so
 * the API and workers reconnect to the same URL.
 */
export class FaultRedis {
  private child: ChildProcess | null = null;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly extraArgs: string[] = [],
  ) {}

  /** `extraArgs` go to redis-server as they are (e.g. `['--maxmemory', '256mb']`). */
  static async start(dir: string, extraArgs: string[] = []): Promise<FaultRedis> {
    fs.mkdirSync(dir, { recursive: true });
    const redis = new FaultRedis(await freePort(), dir, extraArgs);
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Starts (or restarts, empty) and resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.child) return;
    const log = fs.openSync(path.join(this.dir, 'redis.log'), 'a');
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
        ...this.extraArgs,
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    this.child = child;
    process.on('exit', this.killOnExit);
    let failed: Error | null = null;
    child.once(
      'error',
      (error) => (failed = new Error(`could not run redis-server (install it, e.g. apt-get install redis-server): ${error.message}`)),
    );
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    await waitFor(
      async () => {
        if (failed) throw failed;
        if (child.exitCode !== null)
          throw new Error(`redis-server exited with code ${child.exitCode}; see ${path.join(this.dir, 'redis.log')}`);
        return redisAnswers(this.url);
      },
      15_000,
      50,
    );
  }

  /** SIGKILL, like a crash or an OOM kill: no shutdown, no save. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
    process.off('exit', this.killOnExit);
  }
}
