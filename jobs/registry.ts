import type { JobDefinition } from './define-job.js';
import type { TaskDeclaration } from './define-task.js';
import { batchJob } from './batch/batch.job.js';
import { divideJob } from './divide/divide.job.js';
import { invokeJob } from './invoke/invoke.job.js';
import { billingJob } from './billing/billing.job.js';
import { meteringJob } from './metering/metering.job.js';
import { monthRolloverJob } from './month-rollover/month-rollover.job.js';
import { retentionJob } from './retention/retention.job.js';
import { vaultExportJob } from './vault-export/vault-export.job.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each definition carries its own payload type
type AnyJobDefinition = JobDefinition<any, any>;

/** Job types by name. */
export type JobRegistry = ReadonlyMap<string, JobDefinition>;

/** Builds a registry; a job type or a task name registered twice fails at start-up. */
export function createJobRegistry(definitions: readonly AnyJobDefinition[]): JobRegistry {
  const byName = new Map<string, JobDefinition>();
  const tasks = new Map<string, TaskDeclaration>();
  for (const definition of definitions) {
    if (byName.has(definition.name)) throw new Error(`job type "${definition.name}" is registered twice`);
    byName.set(definition.name, definition as JobDefinition);
    for (const task of definition.tasks ?? []) {
      // Job types may share a task (batch runs invoke's evaluateMany); two tasks may not share a name.
      const known = tasks.get(task.name);
      if (known && known !== task)
        throw new Error(`task "${task.name}" is declared twice (job type "${definition.name}" declares another one)`);
      tasks.set(task.name, task);
    }
  }
  return byName;
}

/** Every job type Chrysalis runs. Adding one = one folder under jobs/ + one entry here. */
const jobDefinitions: readonly AnyJobDefinition[] = [
  invokeJob,
  divideJob,
  batchJob,
  meteringJob,
  billingJob,
  vaultExportJob,
  monthRolloverJob,
  retentionJob,
];

export const jobRegistry = createJobRegistry(jobDefinitions);

/** Chrysalis's job types plus `more`: for a test that brings a job type of its own to the workers it starts. */
export const withJobTypes = (...more: AnyJobDefinition[]): JobRegistry => createJobRegistry([...jobDefinitions, ...more]);

export const jobTypeNames = [...jobRegistry.keys()] as [string, ...string[]];

export function getJobDefinition(name: string): JobDefinition | undefined {
  return jobRegistry.get(name);
}

/** The tasks the registry's job types declare, each once, in registration order. */
export function declaredTasks(registry: JobRegistry): TaskDeclaration[] {
  return [...new Set([...registry.values()].flatMap((definition) => definition.tasks ?? []))];
}
