import { randomUUID } from 'node:crypto';

/**
 * A JSON value read as its text (PostgreSQL's `::text` of a jsonb column), to be written into an answer as is:
 * a megabyte result is then neither parsed nor serialised again on the API's event loop. Only `stringifyWithJsonText`
 * (api/send-json.ts `sendJson`) writes it as its text; anything else would write `{"text": …}`.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** A jsonb column read as text: its JsonText, or null for SQL NULL and for JSON `null` (as a parsed read gives). */
export function jsonTextOf(text: string | null): JsonText | null {
  return text === null || text === 'null' ? null : new JsonText(text);
}

/**
 * Rows whose `result` was read as text (a jobs' or batch items' `result::text as result`), each result made a JsonText:
 * an answer writes it unparsed, so a page of megabyte results costs the API's event loop a copy, not a parse and a
 * serialisation. Changes the rows in place.
 */
export function resultsAsJsonText<Row extends { result: unknown }>(rows: Row[]): Row[] {
  for (const row of rows) row.result = jsonTextOf(row.result as string | null);
  return rows;
}

/**
 * What marks a JsonText's place while the rest is written: a random value of this process that no answer ever shows
 * (every mark is replaced), so no serialised string can hold one unless by a 122-bit chance.
 */
const mark = `\u0000json-text:${randomUUID()}:`;
/** A mark as JSON.stringify writes it (its \u0000 escaped), with the JsonText's number: compiled once. */
const writtenMark = new RegExp(`"${escapeRegExp(JSON.stringify(mark).slice(1, -1))}(\\d+)"`, 'g');

/** `JSON.stringify(value)` with every JsonText in it written as its text. */
export function stringifyWithJsonText(value: unknown): string {
  const texts: string[] = [];
  const skeleton = JSON.stringify(value, (_key, item: unknown) => {
    if (!(item instanceof JsonText)) return item;
    texts.push(item.text);
    return `${mark}${texts.length - 1}`;
  });
  if (texts.length === 0) return skeleton;
  return skeleton.replace(writtenMark, (_match, index: string) => texts[Number(index)]!);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
