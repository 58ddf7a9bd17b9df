/** The attacks of issue 15, in the order it lists them (each in the file of what it attacks), then those found since. */
import type { Attack } from './attack.js';
import { bigPayloads, bigResults, enterpriseReads, failedLogins, substrateBatches } from './api-attacks.js';
import { bigResultBatches, nearLimitBatches, regexBatches, regexSchedules } from './pool-attacks.js';
import { hangingWebhooks } from './webhook-attacks.js';

export type { Attack, AttackContext, AttackOutcome } from './attack.js';

export const attacks: Attack[] = [
  regexBatches,
  regexSchedules,
  nearLimitBatches,
  substrateBatches,
  failedLogins,
  bigResults,
  bigPayloads,
  enterpriseReads,
  hangingWebhooks,
  bigResultBatches,
];
