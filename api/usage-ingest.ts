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
  rejected: IngestRejection[];
}

/** Parses and validates each non-blank line on its own; a bad line is reported and never stops the others. */
export function parseIngestBody(body: string, now = Date.now()): ParsedIngest {
  const rows: ParsedIngest['rows'] = [];
  const rejected: IngestRejection[] = [];
  const lines = body.split('\n');
  lines.forEach((text, index) => {
    const line = index + 1;
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      rejected.push({ line, error: 'not valid JSON' });
      return;
    }
    const parsed = ingestRowSchema.safeParse(value);
    if (!parsed.success) {
      rejected.push({ line, error: parsed.error.issues.map((issue) => describeIssue(issue)).join('; ') });
      return;
    }
    const row = parsed.data;
    const timestamp = new Date(row.timestamp);
    if (timestamp.getTime() > now + maxClockSkewMs) {
      rejected.push({ line, error: 'timestamp: is more than 5 minutes in the future' });
      return;
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
  });
  return { rows, rejected };
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
