import { ApiKeySchema } from './api-key.entity.js';
import { CustomerSchema } from './customer.entity.js';
import { JobRecordSchema } from './job-record.entity.js';
import { RefreshTokenSchema } from './refresh-token.entity.js';
import { ServiceInstanceSchema } from './service-instance.entity.js';
import { SubstrateSchema } from './substrate.entity.js';
import { TosAcceptanceSchema } from './tos-acceptance.entity.js';
import { UserSchema } from './user.entity.js';

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
];
