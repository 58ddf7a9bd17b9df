/** Longest a submit waits for Redis before answering 202 from the PostgreSQL outbox alone. */
export const enqueueTimeoutMs = 1500;

/**
 * Waits for an enqueue (a BullMQ add, an admission) at most `timeoutMs`. While Redis is down an add would
 * wait for the reconnect; a submit answers now instead and lets the sweeper (or the pending add itself, when
 * Redis returns) deliver the job — a second add of the same id is a no-op. True when Redis took it in time;
 * false when it failed or did not answer, after `onFailure` is told why.
 */
export async function withinEnqueueTimeout(
  adding: Promise<unknown>,
  onFailure: (error: unknown) => void,
  timeoutMs = enqueueTimeoutMs,
): Promise<boolean> {
  adding.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      adding,
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not take the job within ${timeoutMs} ms`)), timeoutMs)),
      ),
    ]);
    return true;
  } catch (error) {
    onFailure(error);
    return false;
  } finally {
    clearTimeout(timer);
  }
}
