import { jobWaits } from '../../lib/metrics/catalog.js';

export type WaitAnswers = { notice: number; poll: number; timeout: number };

/** How many `Prefer: wait` waits in this process each of notice, poll and timeout has answered so far. */
export async function waitAnswers(): Promise<WaitAnswers> {
  const counts: WaitAnswers = { notice: 0, poll: 0, timeout: 0 };
  for (const { labels, value } of (await jobWaits.get()).values) counts[labels.answered_by as keyof WaitAnswers] = value;
  return counts;
}

/** The waits answered since `before`, by what answered them. */
export async function waitAnswersSince(before: WaitAnswers): Promise<WaitAnswers> {
  const now = await waitAnswers();
  return { notice: now.notice - before.notice, poll: now.poll - before.poll, timeout: now.timeout - before.timeout };
}
