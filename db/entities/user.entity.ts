import { EntitySchema } from '@mikro-orm/core';

export type Role = 'user' | 'admin';

export interface User {
  id: string;
  customerId: string;
  email: string;
  passwordHash: string;
  role: Role;
  createdAt: Date;
}

export const UserSchema = new EntitySchema<User>({
  name: 'User',
  tableName: 'users',
  properties: {
    id: { type: 'uuid', primary: true },
    customerId: { type: 'uuid', index: true },
    email: { type: 'text', unique: true },
    passwordHash: { type: 'text' },
    role: { type: 'text', default: 'user' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
