import { AdminAuditSchema } from './admin-audit.entity.js';
import { ApiKeySchema } from './api-key.entity.js';
import { BatchItemSchema } from './batch-item.entity.js';
import { RelationshipSchema } from './relationship.entity.js';
import { CustomerSchema } from './customer.entity.js';
import { JobRecordSchema } from './job-record.entity.js';
import { JobIdempotencyKeySchema } from './job-idempotency-key.entity.js';
import { RefreshTokenSchema } from './refresh-token.entity.js';
import { ServiceInstanceSchema } from './service-instance.entity.js';
import { SubstrateSchema } from './substrate.entity.js';
import { CustomerRelationshipCountSchema } from './customer-relationship-count.entity.js';
import { CustomerSubstrateCountSchema } from './customer-substrate-count.entity.js';
import { TosAcceptanceSchema } from './tos-acceptance.entity.js';
import { UserSchema } from './user.entity.js';
import { ScheduleSchema } from './schedule.entity.js';
import { WebhookAccountSecretSchema } from './webhook-account-secret.entity.js';
import { WebhookAttemptSchema } from './webhook-attempt.entity.js';
import { WebhookDeliverySchema } from './webhook-delivery.entity.js';
import { WebhookEndpointSchema } from './webhook-endpoint.entity.js';
import { BillingChargeSchema } from './billing-charge.entity.js';
import { EscrowAccountSchema } from './escrow-account.entity.js';
import { EscrowEntrySchema } from './escrow-entry.entity.js';
import { EscrowTransactionSchema } from './escrow-transaction.entity.js';
import { MeteringWatermarkSchema } from './metering-watermark.entity.js';
import { RequestLogSchema } from './request-log.entity.js';
import { UsageRecordSchema } from './usage-record.entity.js';
import { VaultExportSchema } from './vault-export.entity.js';

/** Every entity MikroORM knows. A new entity goes here, then `npm run migration:create`. */
export const entities = [
  CustomerSchema,
  UserSchema,
  RefreshTokenSchema,
  TosAcceptanceSchema,
  ApiKeySchema,
  ServiceInstanceSchema,
  SubstrateSchema,
  CustomerSubstrateCountSchema,
  CustomerRelationshipCountSchema,
  JobRecordSchema,
  JobIdempotencyKeySchema,
  RelationshipSchema,
  BatchItemSchema,
  WebhookEndpointSchema,
  WebhookAccountSecretSchema,
  WebhookDeliverySchema,
  WebhookAttemptSchema,
  ScheduleSchema,
  RequestLogSchema,
  UsageRecordSchema,
  MeteringWatermarkSchema,
  EscrowAccountSchema,
  EscrowTransactionSchema,
  EscrowEntrySchema,
  BillingChargeSchema,
  VaultExportSchema,
  AdminAuditSchema,
];
