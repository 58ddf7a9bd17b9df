import { pino } from 'pino';

/**
 * Fields of a PostgreSQL error (pg's DatabaseError, copied onto MikroORM's exceptions) or of a query
 * error that hold row data or query text: `detail` ("Key (email)=(…) already exists", "Failing row
 * contains (…)"), `where`, `internalQuery`, `hint`, and the statement and its parameters.
 */
const dataFields = ['detail', 'hint', 'where', 'internalQuery', 'sql', 'query', 'params', 'parameters', 'bindings', 'values'] as const;

interface DatabaseErrorLike {
  message: string;
  code: string;
  severity: string;
}

const isErrorLike = (value: unknown): value is Error =>
  typeof value === 'object' && value !== null && typeof (value as Error).message === 'string';

/** pg's DatabaseError and MikroORM's DriverException (which copies the former's fields): a SQLSTATE and a severity. */
function isDatabaseError(value: unknown): value is DatabaseErrorLike & Error {
  if (!isErrorLike(value)) return false;
  const { code, severity } = value as Partial<DatabaseErrorLike>;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string';
}

const maxStatementLength = 200;

/** The statement with every literal replaced by `?`: which query failed, without the values it carried. */
export function statementShape(sql: string): string {
  const shape = sql
    .replace(/(?:(?<!\w)E)?'(?:[^']|'')*'?/g, '?') // string literals (MikroORM inlines parameters as literals)
    .replace(/(?<![\w$.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, '?')
    .replace(/\s+/g, ' ')
    .trim();
  return shape.length > maxStatementLength ? `${shape.slice(0, maxStatementLength)}…` : shape;
}

/**
 * A database error's message without data. Knex prefixes PostgreSQL's message with the statement and its
 * values inlined (`<sql> - <message>`) and MikroORM appends `detail` and `hint`; both are taken off, and in
 * a data exception (SQLSTATE class 22: "invalid input syntax for type uuid: \"…\"") the quoted value too.
 */
function describeDatabaseError(error: DatabaseErrorLike): { message: string; statement?: string } {
  let message = error.message;
  const appended = message.search(/\n - (detail|hint): /);
  if (appended !== -1) message = message.slice(0, appended);
  const separator = message.lastIndexOf(' - ');
  const statement = separator === -1 ? undefined : statementShape(message.slice(0, separator));
  if (separator !== -1) message = message.slice(separator + 3);
  if (error.code.startsWith('22')) message = message.replace(/"(?:[^"]|"")*"/g, '"[REDACTED]"');
  return statement === undefined ? { message } : { message, statement };
}

/** The stack frames only: the first line of a stack repeats the message, and a database error's carries its data. */
const framesOf = (stack: unknown): string =>
  typeof stack === 'string'
    ? stack
        .split('\n')
        .filter((line) => /^\s+at /.test(line))
        .join('\n')
    : '';

function causesOf(error: Error): Error[] {
  const chain: Error[] = [error];
  for (let cause = error.cause; isErrorLike(cause) && chain.length < 10 && !chain.includes(cause); cause = cause.cause) chain.push(cause);
  return chain;
}

/**
 * pino's `err` serializer, minus what a database error carries of the data: the statement's values and the
 * row in `detail` never reach a log line (they may be customers' payloads, results or emails). What stays is
 * what diagnoses the failure: the error's type, its SQLSTATE `code`, `constraint`, `table`, `column`,
 * `routine`, PostgreSQL's message and the statement's shape (`statement`, literals as `?`). Errors without a
 * database error in their chain of causes are serialized exactly as pino does.
 */
export function serializeError(value: unknown): unknown {
  if (!isErrorLike(value)) return value;
  const serialized = pino.stdSerializers.err(value) as unknown as Record<string, unknown>;
  const chain = causesOf(value);
  const { errors } = value as { errors?: unknown };
  if (Array.isArray(errors)) serialized.aggregateErrors = errors.map(serializeError);
  if (!chain.some(isDatabaseError)) return serialized;

  const described = chain.map((error) => (isDatabaseError(error) ? describeDatabaseError(error) : { message: error.message }));
  serialized.message = described.map((entry) => entry.message).join(': ');
  serialized.stack = chain
    .map((error, index) => `${error.name}: ${described[index]!.message}\n${framesOf(error.stack)}`)
    .join('\ncaused by: ');
  const statement = described.find((entry) => entry.statement !== undefined)?.statement;
  if (statement !== undefined) serialized.statement = statement;
  for (const field of dataFields) delete serialized[field];
  return serialized;
}
