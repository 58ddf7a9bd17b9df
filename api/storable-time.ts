import { z } from 'zod';

/** The earliest instant a client may send: 0001-01-01T00:00:00Z (PostgreSQL has no year 0; a JS Date would make it 1 BC). */
export const earliestStorableMs = Date.parse('0001-01-01T00:00:00Z');
/** The latest: 9999-12-31T23:59:59.999Z, past which `toISOString()` writes an expanded `+010000-…` year that no client parses. */
export const latestStorableMs = Date.parse('9999-12-31T23:59:59.999Z');

const formatMessage = 'an ISO 8601 date-time with a time zone, e.g. 2026-12-03T10:00:00Z';
const rangeMessage = 'must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z';

/** Whether an ISO 8601 date-time names an instant within the storable range, once its offset is applied. */
export const isStorableTime = (value: string): boolean => {
  const ms = Date.parse(value);
  return ms >= earliestStorableMs && ms <= latestStorableMs;
};

/**
 * An ISO 8601 date-time with its offset (`Z` or `+02:00`) whose instant PostgreSQL and a JS Date both hold and
 * answers echo back as written: years 0001–9999 in UTC. zod's format alone admits `9999-12-31T23:59:59-23:59`
 * (year 10000 in UTC) and `0000-01-01T00:00:00Z` (a year PostgreSQL refuses); every date input goes through this,
 * so such a value is a 400 naming its field, never a 500 from the database or a `+010000-…` string later.
 */
export const storableTime = () =>
  z.iso
    .datetime({ offset: true, message: formatMessage })
    .refine(isStorableTime, { message: rangeMessage, when: (payload) => payload.issues.length === 0 });

/** A calendar date alone, `2026-12-01`: ISO 8601 too. */
const dateOnly = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A time filter (`created_after`, `from`, …): `storableTime`, or a date alone (`2026-12-01`), which means that
 * day's start in UTC and is answered as `2026-12-01T00:00:00Z`.
 */
export const filterTime = () =>
  z.preprocess((value) => (typeof value === 'string' && dateOnly.test(value) ? `${value}T00:00:00Z` : value), storableTime());
