import { EntitySchema } from '@mikro-orm/core';

/** One vault CSV written to VAULT_PATH: how many key rows and the file's SHA-256, for audit and for readers to verify. */
export interface VaultExport {
  id: string;
  path: string;
  rowCount: number;
  bytes: number;
  sha256: string;
  createdAt: Date;
}

export const VaultExportSchema = new EntitySchema<VaultExport>({
  name: 'VaultExport',
  tableName: 'vault_exports',
  properties: {
    id: { type: 'uuid', primary: true },
    path: { type: 'text' },
    rowCount: { type: 'integer' },
    bytes: { type: 'integer' },
    sha256: { type: 'text' },
    createdAt: { type: 'datetime', columnType: 'timestamptz', defaultRaw: 'now()' },
  },
});
