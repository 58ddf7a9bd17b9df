/** Piscina entry of the test job type `shout`: pure, like every *.task.ts. Answers with its thread, to show it ran in the pool. */
import { threadId } from 'node:worker_threads';

export interface ShoutInput {
  text: string;
}

export interface ShoutOutput {
  text: string;
  threadId: number;
}

export default function shout({ text }: ShoutInput): ShoutOutput {
  return { text: `${text.toUpperCase()}!`, threadId };
}
