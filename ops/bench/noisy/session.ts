import { randomBytes } from 'node:crypto';
import type { Attack } from './attacks.js';
import { createCustomer, type Customer } from './customers.js';
import { runAttack, type AttackReport, type NoisyPlatform } from './run.js';
import type { NoisySizes } from './sizes.js';
import { Victim } from './victim.js';

/**
 * Customers for a series of attacks on one instance: one victim (pro tier: its steady trickle of
 * invokes stays inside its per-minute budget), one enterprise customer, and a fresh starter attacker for
 * each attack so no attack inherits another's spent budgets.
 */
export class NoisySession {
  private constructor(
    private readonly platform: NoisyPlatform,
    readonly victim: Victim,
    readonly enterprise: Customer,
  ) {}

  static async start(platform: NoisyPlatform): Promise<NoisySession> {
    const victimCustomer = await createCustomer(platform.api, 'victim', 'pro');
    const enterprise = await createCustomer(platform.api, 'enterprise', 'enterprise');
    const victim = await Victim.start(platform.api, victimCustomer, platform.redis, `noisy-probe:${randomBytes(4).toString('hex')}`);
    // A few unmeasured calls first, so the first measured ones do not pay for start-up (JIT, connections).
    for (let i = 0; i < 20; i++) await victim.invoke();
    return new NoisySession(platform, victim, enterprise);
  }

  async run(attack: Attack, sizes: NoisySizes): Promise<AttackReport> {
    const attacker = await createCustomer(this.platform.api, `attacker-${attack.name}`, 'starter');
    return runAttack(attack, { platform: this.platform, victim: this.victim, attacker, enterprise: this.enterprise, sizes });
  }

  async close(): Promise<void> {
    await this.victim.close();
  }
}
