import type { PeerDatabase } from './peer-database.js';

/** One job of the peers scenario, the same on every side. */
export interface PeerJob {
  expression: string;
  parameters: Record<string, number>;
}

/** A queue the peers scenario measures: its worker process on its own database, and how the bench enqueues. */
export interface PeerSide {
  name: string;
  /** Printed with the side's figures. */
  settings: Record<string, unknown>;
  start(database: PeerDatabase): Promise<RunningSide>;
}

export interface RunningSide {
  /** The worker process, whose CPU seconds are the side's. */
  pid: number | undefined;
  /** Adds the jobs in bulk, in chunks of `enqueueChunk` (as the platform's bulk submit and the raw program do). */
  enqueue(jobs: PeerJob[]): Promise<void>;
  stop(): Promise<void>;
}

export const enqueueChunk = 1000;

export async function inChunks<T>(items: T[], each: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < items.length; start += enqueueChunk) await each(items.slice(start, start + enqueueChunk));
}
