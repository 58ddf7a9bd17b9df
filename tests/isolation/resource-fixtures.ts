import { randomUUID } from 'node:crypto';
import type { TenantResources } from '../helpers/tenant-resources.js';

/** The tenants of the matrix: A owns the resources, B attacks them, the admin owns the platform's jobs. */
export interface World {
  a: TenantResources;
  b: TenantResources;
  /** A metering job the admin ran: an admin-only resource. */
  adminJobId: string;
}

/**
 * How one path parameter is filled. `owned`: the value names one customer's resource, so another
 * customer's value must answer 404, exactly as a value naming nothing. `per-customer name`: every customer
 * has a resource of that name (a service type), so B's call acts on B's own one and must leave A's alone.
 */
export type Fixture =
  | {
      kind: 'owned';
      resource: string;
      /** Values B must not reach: A's (and the admin's) resources. */
      foreign: (world: World) => string[];
      /** B's own resource, for the other parameters of an operation while this one carries a foreign value. */
      own: (world: World) => string;
      /** A well-formed value naming nothing, whose answer a foreign value's must equal. */
      nothing: () => string;
      /**
       * Routes for administrators only: a customer is refused by role (403 `forbidden`) before any id is
       * looked at, the same for A's id as for one of nothing, as every admin route answers a customer.
       */
      adminOnly?: true;
    }
  | { kind: 'per-customer name'; resource: string; names: string[] };

const uuid = () => randomUUID();
const substrateOfNothing = () => `0x${randomUUID().replace(/-/g, '').slice(0, 16)}`;

/**
 * Route prefix (the document's path up to and including the parameter) → how A's resource for it is
 * made (tests/helpers/tenant-resources.ts, through the API) and which of its ids fill it. A parameterised
 * route whose prefix is not here fails the matrix's first test until its fixture is added.
 */
export const fixtures: Record<string, Fixture> = {
  '/api-keys/{id}': { kind: 'owned', resource: 'API keys', foreign: (w) => [w.a.apiKeyId], own: (w) => w.b.apiKeyId, nothing: uuid },
  '/jobs/{id}': {
    kind: 'owned',
    resource: 'jobs',
    foreign: (w) => [w.a.jobId, w.a.batchId, w.adminJobId],
    own: (w) => w.b.jobId,
    nothing: uuid,
  },
  '/substrates/{id}': {
    kind: 'owned',
    resource: 'substrates',
    foreign: (w) => [w.a.substrateId, w.a.otherSubstrateId],
    own: (w) => w.b.substrateId,
    nothing: substrateOfNothing,
  },
  '/batches/{id}': { kind: 'owned', resource: 'batches', foreign: (w) => [w.a.batchId], own: (w) => w.b.batchId, nothing: uuid },
  '/relationships/{id}': {
    kind: 'owned',
    resource: 'relationships',
    foreign: (w) => [w.a.relationshipId],
    own: (w) => w.b.relationshipId,
    nothing: uuid,
  },
  '/relationships/outgoing/{substrate_id}': {
    kind: 'owned',
    resource: 'relationships',
    foreign: (w) => [w.a.substrateId],
    own: (w) => w.b.substrateId,
    nothing: substrateOfNothing,
  },
  '/relationships/incoming/{substrate_id}': {
    kind: 'owned',
    resource: 'relationships',
    foreign: (w) => [w.a.otherSubstrateId],
    own: (w) => w.b.otherSubstrateId,
    nothing: substrateOfNothing,
  },
  '/schedules/{name}': {
    kind: 'owned',
    resource: 'schedules',
    foreign: (w) => [w.a.scheduleName],
    own: (w) => w.b.scheduleName,
    nothing: () => `nothing-${uuid().slice(0, 8)}`,
  },
  '/webhooks/{id}': { kind: 'owned', resource: 'webhooks', foreign: (w) => [w.a.webhookId], own: (w) => w.b.webhookId, nothing: uuid },
  '/webhooks/{id}/deliveries/{delivery_id}': {
    kind: 'owned',
    resource: 'webhook deliveries',
    foreign: (w) => [w.a.deliveryId as string],
    own: (w) => w.b.deliveryId as string,
    nothing: uuid,
  },
  '/admin/customers/{id}': {
    kind: 'owned',
    resource: 'customers',
    foreign: (w) => [w.a.customerId],
    own: (w) => w.b.customerId,
    nothing: uuid,
    adminOnly: true,
  },
  '/admin/jobs/{id}': {
    kind: 'owned',
    resource: 'jobs',
    foreign: (w) => [w.a.jobId, w.a.batchId, w.adminJobId],
    own: (w) => w.b.jobId,
    nothing: uuid,
    adminOnly: true,
  },
  '/admin/batches/{id}': {
    kind: 'owned',
    resource: 'batches',
    foreign: (w) => [w.a.batchId],
    own: (w) => w.b.batchId,
    nothing: uuid,
    adminOnly: true,
  },
  '/services/{service_type}': { kind: 'per-customer name', resource: 'services', names: ['compute', 'seal'] },
};

/** `/webhooks/{id}/deliveries/{delivery_id}/redeliver` → `{id: '/webhooks/{id}', delivery_id: '/webhooks/{id}/deliveries/{delivery_id}'}`. */
export function parameterPrefixes(path: string): Record<string, string> {
  const prefixes: Record<string, string> = {};
  for (const match of path.matchAll(/\{([^}]+)\}/g)) prefixes[match[1] as string] = path.slice(0, (match.index ?? 0) + match[0].length);
  return prefixes;
}
