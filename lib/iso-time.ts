/** PostgreSQL's text of a `timestamptz`, as the driver hands it over: `0001-01-01 00:00:00.5+00`, `… 12:00:00-05:30`. */
const postgresTime = /^(\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d(?:\.\d+)?)(Z|[+-]\d\d)(?::?(\d\d))?$/;

/**
 * A stored time as ISO 8601 UTC (`2026-12-08T01:02:03.000Z`), from a Date or from PostgreSQL's text of it.
 * `new Date()` reads that text with V8's lenient parser, which takes years 0001–0099 for 1950–2049: a usage window
 * of 0001-01-01 was shown as 2001-01-01. Rewritten to ISO 8601 first, every year from 0001 to 9999 reads as written.
 */
export function isoTime(value: Date | string): string {
  if (value instanceof Date) return value.toISOString();
  const parts = postgresTime.exec(value);
  if (!parts) return new Date(value).toISOString();
  const [, year, month, day, hours, minutes, seconds, zone, zoneMinutes] = parts;
  const offset = zone === 'Z' ? 'Z' : `${zone}:${zoneMinutes ?? '00'}`;
  return new Date(`${year}-${month}-${day}T${hours}:${minutes}:${seconds}${offset}`).toISOString();
}
