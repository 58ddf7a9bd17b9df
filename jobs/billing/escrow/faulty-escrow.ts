import type { EntityManager } from '@mikro-orm/postgresql';
import { EscrowUnavailableError, type EscrowAdapter, type EscrowChargeRequest, type EscrowChargeResult } from './escrow.js';
import { inTransaction } from '../../../db/transaction.js';

/**
 * What the faulty escrow does on one call:
 * - `ok`: charge and answer;
 * - `fail`: refuse before charging (an outage);
 * - `timeout`: never answer, never charge;
 * - `lose-answer`: charge, then fail as if the reply were lost on the way back;
 * - `charge-then-timeout`: charge, then never answer.
 */
export type EscrowFault = 'ok' | 'fail' | 'timeout' | 'lose-answer' | 'charge-then-timeout';

export interface FaultyEscrowOptions {
  /** The fault for the n-th call (0-based). */
  plan: (call: number, request: EscrowChargeRequest) => EscrowFault;
  /**
   * Makes the inner escrow behave like a remote one: each charge runs in its own transaction on a fresh
   * entity manager and commits whatever billing does next, so a lost answer leaves a real charge behind.
   * Without it the inner escrow posts inside billing's transaction.
   */
  remote?: () => EntityManager;
}

/**
 * A fault-injecting escrow for tests: wraps a working adapter and fails, hangs or loses answers on
 * the calls the plan names. `calls` lists what each call did.
 */
export class FaultyEscrow implements EscrowAdapter {
  readonly name = 'faulty';
  readonly calls: Array<{ key: string; fault: EscrowFault }> = [];

  constructor(
    private readonly inner: EscrowAdapter,
    private readonly options: FaultyEscrowOptions,
  ) {}

  async charge(em: EntityManager, request: EscrowChargeRequest): Promise<EscrowChargeResult> {
    const fault = this.options.plan(this.calls.length, request);
    this.calls.push({ key: request.idempotencyKey, fault });
    if (fault === 'fail') throw new EscrowUnavailableError('escrow unavailable (injected)');
    if (fault === 'timeout') return new Promise<never>(() => undefined);
    const remote = this.options.remote;
    const result = remote ? await inTransaction(remote(), (tx) => this.inner.charge(tx, request)) : await this.inner.charge(em, request);
    if (fault === 'lose-answer') throw new EscrowUnavailableError('connection reset after the escrow charged (injected)');
    if (fault === 'charge-then-timeout') return new Promise<never>(() => undefined);
    return result;
  }
}
