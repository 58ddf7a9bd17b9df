import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * JSON logs to stdout (or `destination`, which tests use to read the lines); every line carries the
 * process role (`api` or `worker`).
 */
export function createLogger(level: string, role: 'api' | 'worker' | 'test', destination?: DestinationStream): Logger {
  const options = { level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: ['req.headers.authorization', 'req.headers.cookie'] };
  return destination ? pino(options, destination) : pino(options);
}
