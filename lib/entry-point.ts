import type { Logger } from 'pino';
import { ConfigError } from '../config.js';

/** SIGTERM to exit: the shutdown deadline plus a few seconds to flush and close, inside 30 s. */
export const hardStopMs = 29_000;

/**
 * On the first SIGTERM/SIGINT, runs `stop` once; exits 0 when it resolves, 1 when it throws or when it
 * overruns `hardStopMs`. `stop` returns figures for the closing log line.
 */
export function stopOnSignals(logger: Logger, role: string, deadlineMs: number, stop: () => Promise<Record<string, unknown>>): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    logger.info({ signal, deadlineMs }, `${role} shutting down`);
    setTimeout(() => {
      logger.error(`${role} shutdown overran; exiting anyway`);
      process.exit(1);
    }, hardStopMs).unref();
    try {
      const report = await stop();
      logger.info({ ...report, totalMs: Date.now() - started }, `${role} stopped`);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, `${role} shutdown failed`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/** Runs a process's `main`; a failed start exits 1 (a configuration error with just its message). */
export function runEntryPoint(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  });
}
