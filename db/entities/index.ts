import { ApiKeySchema } from './api-key.entity.js';
import { BatchItemSchema } from './batch-item.entity.js';
import { RelationshipSchema } from './relationship.entity.js';
import { CustomerSchema } from './customer.entity.js';
import { JobRecordSchema } from './job-record.entity.js';
import { RefreshTokenSchema } from './refresh-token.entity.js';
import { ServiceInstanceSchema } from './service-instance.entity.js';
import { SubstrateSchema } from './substrate.entity.js';
import { TosAcceptanceSchema } from './tos-acceptance.entity.js';
import { UserSchema } from './user.entity.js';
import { ScheduleSchema } from './schedule.entity.js';
import { WebhookAccountSecretSchema } from './webhook-account-secret.entity.js';
import { WebhookAttemptSchema } from './webhook-attempt.entity.js';
import { WebhookDeliverySchema } from './webhook-delivery.entity.js';
import { WebhookEndpointSchema } from './webhook-endpoint.entity.js';

/** Every entity MikroORM knows. A new entity goes here, then `npm run migration:create`. */
export const entities = [
  CustomerSchema,
  UserSchema,
  RefreshTokenSchema,
  TosAcceptanceSchema,
  ApiKeySchema,
  ServiceInstanceSchema,
  SubstrateSchema,
  JobRecordSchema,
  RelationshipSchema,
  BatchItemSchema,
  WebhookEndpointSchema,
  WebhookAccountSecretSchema,
  WebhookDeliverySchema,
  WebhookAttemptSchema,
  ScheduleSchema,
];
