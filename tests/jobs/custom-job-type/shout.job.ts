import { z } from 'zod';
import { defineJob } from '../../../jobs/define-job.js';
import { defineTask } from '../../../jobs/define-task.js';
import type { ShoutInput, ShoutOutput } from './shout.task.js';

/**
 * A job type defined outside jobs/, with a Piscina task, a lifecycle hook and a platform schedule of its
 * own: everything about it is in this folder, and `withJobTypes(shoutJob)` is its one registry line.
 */
export const shoutTask = defineTask<ShoutInput, ShoutOutput>({ name: 'shout', module: import.meta.url, file: './shout.task' });

/** What the job type's own hook saw finish. */
export const shouted: string[] = [];

export const shoutJob = defineJob({
  name: 'shout',
  description: 'Upper-case a text, with an exclamation mark.',
  payload: z.strictObject({ text: z.string().max(100) }),
  result: z.object({ text: z.string(), threadId: z.number() }),
  tasks: [shoutTask],
  hooks: [
    {
      name: 'remember-shouts',
      finished(outcome) {
        if (outcome.state === 'completed') shouted.push(outcome.result.text);
      },
    },
  ],
  schedule: () => ({ every: 3_600_000 }),
  async process(payload, ctx) {
    return ctx.runTask(shoutTask, payload, ctx.signal);
  },
});
