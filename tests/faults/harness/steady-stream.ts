import type { FaultStack } from './fault-stack.js';

/**
 * Submits invokes one after another (`inFlight` at a time) until stopped, as clients would during a
 * fault: `accepted` holds the ids answered 202 (the platform's promise), `refused` counts every other
 * answer by status (0: no answer at all) — those were never promised.
 */
export class SteadyStream {
  readonly accepted: string[] = [];
  readonly refused: Record<number, number> = {};
  private running = true;
  private next = 0;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly stack: FaultStack,
    private readonly substrateId: string,
    inFlight = 4,
    private readonly pauseMs = 25,
  ) {
    this.loops = Array.from({ length: inFlight }, () => this.loop());
  }

  /** The `x` of the last submit sent: payloads are `{ x: 0 }`, `{ x: 1 }`, … */
  get sent(): number {
    return this.next;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const x = this.next++;
      const answer = await this.stack.submit('invoke', { substrate_id: this.substrateId, parameters: { x } }).catch(() => null);
      if (answer?.status === 202) this.accepted.push(answer.body.id as string);
      else this.refused[answer?.status ?? 0] = (this.refused[answer?.status ?? 0] ?? 0) + 1;
      await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}
