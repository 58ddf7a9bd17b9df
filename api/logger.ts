import { pino, type Logger } from 'pino';

/** JSON logs to stdout; every line carries the process role (`api` or `worker`). */
export function createLogger(level: string, role: 'api' | 'worker' | 'test'): Logger {
  return pino({ level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: ['req.headers.authorization', 'req.headers.cookie'] });
}
