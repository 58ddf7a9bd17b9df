import { EntitySchema } from '@mikro-orm/core';

/** Opaque refresh tokens, stored as SHA-256 hashes. One login starts a family; reuse of a rotated token revokes it. */
export interface RefreshToken {
  id: string;
  userId: string;
  familyId: string;
  tokenHash: string;
  expiresAt: Date;
  rotatedAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

export const RefreshTokenSchema = new EntitySchema<RefreshToken>({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: {
    id: { type: 'uuid', primary: true },
    userId: { type: 'uuid', index: true },
    familyId: { type: 'uuid', index: true },
    tokenHash: { type: 'text', unique: true },
    expiresAt: { type: 'datetime', columnType: 'timestamptz' },
    rotatedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    revokedAt: { type: 'datetime', columnType: 'timestamptz', nullable: true },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
