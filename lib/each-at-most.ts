/** Runs `run` on every item (with its index), at most `limit` at a time, in order; resolves when all have settled. */
export async function eachAtMost<T>(limit: number, items: readonly T[], run: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      await run(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
