/**
 * Date-times outside years 0001–9999 (UTC) that a client may send: the largest a JS Date holds (with and without
 * its sign), a five-digit year, a four-digit one that its offset carries into year 10000, and year 0 (which
 * PostgreSQL refuses). Every date input answers each with a 400 naming the field (api/storable-time.ts).
 */
export const outOfRangeTimes = [
  '+275760-09-13T00:00:00Z',
  '275760-09-13T00:00:00Z',
  '10000-01-01T00:00:00Z',
  '9999-12-31T23:59:59-23:59',
  '0000-01-01T00:00:00Z',
  '-000001-01-01T00:00:00Z',
];
