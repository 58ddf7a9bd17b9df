/**
 * `items` as JSON arrays of at most `maxChars` characters each (one item longer than that goes alone), each with
 * the items it holds, in order: one array for the usual batch of small items. Each array is made when asked for,
 * so a caller that runs a statement per array holds one array's JSON at a time.
 *
 * For the statements that take their rows as one JSON parameter (`jsonb_to_recordset`): PostgreSQL refuses a jsonb
 * value over 256 MiB, and a batch of large rows past it failed every row of the batch.
 */
export function* jsonArrayChunks<Item>(
  items: readonly Item[],
  toJson: (item: Item) => string,
  maxChars: number,
): Generator<{ items: Item[]; json: string }> {
  let chunk: Item[] = [];
  let parts: string[] = [];
  let chars = 0;
  for (const item of items) {
    const part = toJson(item);
    if (parts.length > 0 && chars + part.length + 1 > maxChars) {
      yield { items: chunk, json: `[${parts.join(',')}]` };
      chunk = [];
      parts = [];
      chars = 0;
    }
    chunk.push(item);
    parts.push(part);
    chars += part.length + 1;
  }
  if (parts.length > 0) yield { items: chunk, json: `[${parts.join(',')}]` };
}

/** Most characters of row JSON one statement of many rows carries (`jsonArrayChunks`): far below PostgreSQL's 256 MiB. */
export const statementJsonMaxChars = 16 * 1024 * 1024;
