/**
 * `npm start`: finds or launches PostgreSQL and Redis (ops/local-services.ts), checks the configuration, runs
 * migrations, then runs the API and a supervised worker as child processes until SIGTERM/SIGINT.
 *
 * Children inherit stdout/stderr (pino JSON). The launcher's own lines go to stderr prefixed `[chrysalis]`,
 * except the one "ready" line, which goes to stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { apiPortOf, ConfigError, loadConfig, type Config } from '../config.js';
import { createOrm, migrate } from '../db/orm.js';
import { ensureServicesForEnv, isListenPortTaken, loadDotEnv, type LocalServices } from './local-services.js';

const STOP_GRACE_MS = 30_000;
const WORKER_BACKOFF_START_MS = 1_000;
const WORKER_BACKOFF_MAX_MS = 30_000;
const WORKER_HEALTHY_AFTER_MS = 60_000;

const say = (message: string) => process.stderr.write(`[chrysalis] ${message}\n`);

/** api/main.ts + workers/main.ts under tsx, or dist/api/main.js + dist/workers/main.js once built. */
function entryPoint(name: 'api' | 'workers'): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const typescript = import.meta.url.endsWith('.ts');
  const file = path.resolve(here, '..', name, typescript ? 'main.ts' : 'main.js');
  return typescript ? ['--import', import.meta.resolve('tsx'), file] : [file];
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

class Launcher {
  private services: Promise<LocalServices> | undefined;
  private api: ChildProcess | undefined;
  private worker: ChildProcess | undefined;
  private workerRestart: NodeJS.Timeout | undefined;
  private stopping: Promise<never> | undefined;
  private firstSignalAt = 0;

  async run(): Promise<void> {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => this.onSignal(signal));
    process.on('exit', () => {
      for (const child of [this.api, this.worker]) if (child && child.exitCode === null) child.kill('SIGTERM');
    });

    this.watchLauncherAncestors();
    if (loadDotEnv()) say('read .env');
    // Checked before anything is launched: otherwise the other instance answers the readiness probe, this
    // one says "ready" for it, and its own API dies a moment later with EADDRINUSE.
    const port = apiPortOf(process.env);
    if (port && (await isListenPortTaken(port))) {
      say(`port ${port} is in use — another Chrysalis? Stop it, or set PORT to a free port (e.g. PORT=${port + 1} npm start)`);
      return this.stop(1);
    }
    this.services = ensureServicesForEnv(process.env, { log: say });
    await this.services;
    if (this.stopping) return;

    let config: Config;
    try {
      config = loadConfig(process.env);
    } catch (error) {
      if (error instanceof ConfigError) {
        console.error(`Configuration error: ${error.message}`);
        return this.stop(1);
      }
      throw error;
    }

    const migrationsStarted = performance.now();
    const orm = await createOrm(config.databaseUrl, { poolMax: 2 });
    try {
      await migrate(orm);
    } finally {
      await orm.close();
    }
    say(`database migrated (${Math.round(performance.now() - migrationsStarted)} ms)`);
    if (this.stopping) return;

    this.startApi();
    this.startWorker(WORKER_BACKOFF_START_MS);
    await this.announceWhenReady(config);
  }

  private spawnChild(name: 'api' | 'workers'): ChildProcess {
    // Own process group: a terminal Ctrl-C reaches only the launcher, which stops the children in order.
    const child = spawn(process.execPath, entryPoint(name), { env: process.env, stdio: 'inherit', detached: true });
    child.on('error', (error) => say(`could not start ${name}: ${error.message}`));
    return child;
  }

  private startApi() {
    const api = this.spawnChild('api');
    this.api = api;
    api.on('exit', (code, signal) => {
      if (this.stopping) return;
      say(`API exited unexpectedly (${describeExit(code, signal)}); stopping`);
      void this.stop(1);
    });
  }

  /** Restarts the worker when it exits unexpectedly: 1 s, 2 s, 4 s … 30 s; back to 1 s after a 60 s run. */
  private startWorker(delayMs: number) {
    const startedAt = Date.now();
    const worker = this.spawnChild('workers');
    this.worker = worker;
    worker.on('exit', (code, signal) => {
      if (this.stopping) return;
      const backoff = Date.now() - startedAt >= WORKER_HEALTHY_AFTER_MS ? WORKER_BACKOFF_START_MS : delayMs;
      say(`worker exited unexpectedly (${describeExit(code, signal)}); restarting in ${backoff / 1000} s`);
      this.workerRestart = setTimeout(() => {
        this.workerRestart = undefined;
        if (!this.stopping) this.startWorker(Math.min(backoff * 2, WORKER_BACKOFF_MAX_MS));
      }, backoff);
    });
  }

  private async announceWhenReady(config: Config) {
    if (config.port === 0) return;
    const url = `http://127.0.0.1:${config.port}/api/v1/ready`;
    let warned = false;
    while (!this.stopping) {
      const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ok) break;
      if (!warned && performance.now() > 90_000) {
        say(`still waiting for ${url} to answer 200…`);
        warned = true;
      }
      await sleep(200);
    }
    if (this.stopping) return;
    const seconds = (performance.now() / 1000).toFixed(1);
    const relative = path.relative(process.cwd(), path.join(config.dataDir, 'secrets.json'));
    const password = process.env.ADMIN_PASSWORD
      ? 'password from ADMIN_PASSWORD'
      : `password in ${relative.startsWith('..') ? path.join(config.dataDir, 'secrets.json') : relative}`;
    process.stdout.write(
      `Chrysalis is ready on http://localhost:${config.port} (admin: ${config.adminEmail}, ${password}) — started in ${seconds} s\n`,
    );
  }

  /**
   * `npm start` runs `sh -c "… && node dist/ops/start.js"` (`npm run start:tsx`: `tsx ops/start.ts`); `kill <npm pid>`
   * ends npm (and maybe sh) without forwarding the signal, which would orphan the app. So the wrapper processes
   * above the launcher (npm, sh, tsx) are watched:
   * when one of them goes away, the launcher stops as if it had received SIGTERM. Linux only (/proc).
   */
  private watchLauncherAncestors() {
    const stat = (pid: number) => {
      try {
        // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
        const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
        const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
        return { comm, state, ppid: Number(ppid) };
      } catch {
        return undefined;
      }
    };
    const wrappers = new Set(['sh', 'dash', 'bash', 'node', 'tsx']);
    const ancestors: number[] = [];
    for (let pid = process.ppid; pid > 1 && ancestors.length < 4;) {
      const info = stat(pid);
      if (!info || !(wrappers.has(info.comm) || info.comm.startsWith('npm'))) break;
      ancestors.push(pid);
      if (info.comm.startsWith('npm')) break;
      pid = info.ppid;
    }
    if (ancestors.length === 0) return;
    setInterval(() => {
      if (this.stopping) return;
      const gone = ancestors.find((pid) => {
        const info = stat(pid);
        return !info || info.state === 'Z';
      });
      if (gone === undefined) return;
      say(`parent process ${gone} exited; stopping`);
      void this.stop(0);
    }, 1_000).unref();
  }

  private onSignal(signal: NodeJS.Signals) {
    if (!this.stopping) {
      this.firstSignalAt = Date.now();
      say(`${signal} received; stopping (send it again to force)`);
      void this.stop(0);
      return;
    }
    // npm, tsx and the terminal may each deliver the same Ctrl-C; only a later one means "force".
    if (Date.now() - this.firstSignalAt < 2_000) return;
    say(`${signal} received again; killing the app now`);
    for (const child of [this.api, this.worker]) if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Stops the children (SIGTERM, then SIGKILL after 30 s), then the services this launcher started, then exits. */
  stop(exitCode: number): Promise<never> {
    this.stopping ??= (async () => {
      if (this.workerRestart) clearTimeout(this.workerRestart);
      const running = [this.api, this.worker].filter(
        (child): child is ChildProcess => child !== undefined && child.exitCode === null && child.signalCode === null,
      );
      const exited = running.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
      for (const child of running) child.kill('SIGTERM');
      const allExited = Promise.all(exited).then(() => true);
      if (!(await Promise.race([allExited, sleep(STOP_GRACE_MS).then(() => false)]))) {
        say(`the app did not stop within ${STOP_GRACE_MS / 1000} s; killing it`);
        for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await allExited;
      }
      try {
        // A signal during start-up waits for the services being launched, so they are stopped too.
        const services = await this.services?.catch(() => undefined);
        await services?.stop();
      } catch (error) {
        say(`stopping local services failed: ${error instanceof Error ? error.message : String(error)}`);
        exitCode ||= 1;
      }
      process.exit(exitCode);
    })();
    return this.stopping;
  }
}

const launcher = new Launcher();
launcher.run().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`Chrysalis failed to start: ${message}`);
  if (error instanceof Error && !(error instanceof ConfigError) && process.env.LOG_LEVEL === 'debug') console.error(error.stack);
  void launcher.stop(1);
});
