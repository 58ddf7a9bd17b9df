import { z } from 'zod';
import type { NewRequestLog } from '../db/repositories/request-logs.js';
import { isKnownServiceType } from '../jobs/billing/pricing.js';
import { shortKey } from './problems.js';
import { storableTime } from './storable-time.js';

/** One NDJSON line of POST /admin/usage/ingest: a request the edge proxy served. */
export const ingestRowSchema = z.strictObject({
  timestamp: storableTime(),
  customer_id: z.uuid(),
  service_type: z.string().refine(isKnownServiceType, 'is not a service type the pricing table knows'),
  method: z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case HTTP method'),
  status_code: z.number().int().min(100).max(599),
  bytes_out: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** Rows timestamped further ahead than this are refused: the proxy's clock is wrong, or the row is. */
const maxClockSkewMs = 5 * 60_000;

export interface IngestRejection {
  /** 1-based line number in the body. */
  line: number;
  error: string;
}

export interface ParsedIngest {
  rows: Array<NewRequestLog & { line: number }>;
  /** The first `keptRejections` rejected lines, in line order. */
  rejected: IngestRejection[];
  /** Every rejected line. */
  rejectedCount: number;
}

/** How long the parse runs before the event loop answers other requests again, in ms. */
const parseSliceMs = 2;

/**
 * Parses and validates each non-blank line on its own; a bad line is reported and never stops the others. The
 * body (up to 16 MiB, millions of lines) is read in slices of `parseSliceMs`, the event loop free between them:
 * parsed in one go, 250,000 junk lines held every request of every customer for 6 s, and a 16 MiB body for 70 s.
 * Lines are read off the body one by one (no array of them) and only the first `keptRejections` rejections are
 * kept, so a body of junk costs no more memory than its text.
 */
export async function parseIngestBody(body: string, options: { now?: number; keptRejections?: number } = {}): Promise<ParsedIngest> {
  const now = options.now ?? Date.now();
  const keptRejections = options.keptRejections ?? Infinity;
  const rows: ParsedIngest['rows'] = [];
  const rejected: IngestRejection[] = [];
  let rejectedCount = 0;
  const reject = (line: number, error: string) => {
    rejectedCount++;
    if (rejected.length < keptRejections) rejected.push({ line, error });
  };
  let sliceStarted = performance.now();
  for (let start = 0, line = 1; start <= body.length; line++) {
    if (performance.now() - sliceStarted >= parseSliceMs) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStarted = performance.now();
    }
    const newline = body.indexOf('\n', start);
    const end = newline === -1 ? body.length : newline;
    const text = body.slice(start, end);
    start = end + 1;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      reject(line, 'not valid JSON');
      continue;
    }
    const parsed = ingestRowSchema.safeParse(value);
    if (!parsed.success) {
      reject(line, parsed.error.issues.map((issue) => describeIssue(issue)).join('; '));
      continue;
    }
    const row = parsed.data;
    const timestamp = new Date(row.timestamp);
    if (timestamp.getTime() > now + maxClockSkewMs) {
      reject(line, 'timestamp: is more than 5 minutes in the future');
      continue;
    }
    rows.push({
      line,
      timestamp,
      customerId: row.customer_id,
      serviceType: row.service_type,
      method: row.method,
      statusCode: row.status_code,
      bytesOut: row.bytes_out,
    });
  }
  return { rows, rejected, rejectedCount };
}

/** Unknown keys one rejected line names; the rest are counted (a line of 100,000 unknown keys had echoed them all). */
const maxNamedKeys = 10;

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const named = issue.keys.slice(0, maxNamedKeys).map(shortKey).join(', ');
    const more = issue.keys.length - maxNamedKeys;
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${named}${more > 0 ? ` and ${more.toLocaleString('en-US')} more` : ''}`;
  }
  const path = issue.path.map(String).join('.');
  return path ? `${path}: ${issue.message}` : issue.message;
}
