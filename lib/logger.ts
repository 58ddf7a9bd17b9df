import { pino, type DestinationStream, type Logger } from 'pino';
import { serializeError } from './error-serializer.js';

/**
 * JSON logs to stdout (or `destination`, which tests use to read the lines); every line carries the
 * process role (`api` or `worker`). Errors logged as `err` go through `serializeError`, which keeps the
 * data a database error carries (statement values, the row in `detail`) out of the line.
 */
export function createLogger(level: string, role: 'api' | 'worker' | 'test', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ['req.headers.authorization', 'req.headers.cookie'],
    serializers: { err: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}
