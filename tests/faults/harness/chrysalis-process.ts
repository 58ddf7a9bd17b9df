import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export type ProcessKind = 'api' | 'worker';

/**
 * A real Chrysalis process (`node --import tsx api/main.ts` or `workers/main.ts`), its output in a log
 * file. `kill()` is SIGKILL: no shutdown handler runs, active jobs keep their BullMQ locks until they
 * expire, Piscina threads die with the process.
 */
export class ChrysalisProcess {
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  constructor(
    readonly kind: ProcessKind,
    readonly name: string,
    env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {
    const entry = kind === 'api' ? 'api/main.ts' : 'workers/main.ts';
    const log = fs.openSync(logFile, 'a');
    this.child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: repoRoot, env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    process.on('exit', this.killOnExit);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How it ended (`signal SIGKILL`, `exit code 1`), or null while it runs. */
  get exitStatus(): string | null {
    if (this.child.signalCode) return `signal ${this.child.signalCode}`;
    return this.child.exitCode === null ? null : `exit code ${this.child.exitCode}`;
  }

  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
    process.off('exit', this.killOnExit);
  }

  /** SIGTERM (graceful shutdown), SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.alive) {
      this.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    await this.kill();
  }

  /** The last lines of its log (for a failing scenario's report). */
  tail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
