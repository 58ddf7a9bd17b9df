import type { JobDefinition } from './define-job.js';
import { batchJob } from './batch/batch.job.js';
import { divideJob } from './divide/divide.job.js';
import { invokeJob } from './invoke/invoke.job.js';
import { billingJob } from './billing/billing.job.js';
import { meteringJob } from './metering/metering.job.js';
import { monthRolloverJob } from './month-rollover/month-rollover.job.js';
import { vaultExportJob } from './vault-export/vault-export.job.js';

/** Builds the registry; a duplicate name fails at start-up. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each definition carries its own payload type
type AnyJobDefinition = JobDefinition<any, any>;

function register(definitions: readonly AnyJobDefinition[]): Map<string, JobDefinition> {
  const byName = new Map<string, JobDefinition>();
  for (const definition of definitions) {
    if (byName.has(definition.name)) throw new Error(`job type "${definition.name}" is registered twice`);
    byName.set(definition.name, definition as JobDefinition);
  }
  return byName;
}

/** Every job type Chrysalis runs. Adding one = one folder under jobs/ + one entry here. */
export const jobRegistry = register([invokeJob, divideJob, batchJob, meteringJob, billingJob, vaultExportJob, monthRolloverJob]);

export const jobTypeNames = [...jobRegistry.keys()] as [string, ...string[]];

export function getJobDefinition(name: string): JobDefinition | undefined {
  return jobRegistry.get(name);
}
