import { z } from 'zod';

/** Names inside a backup file (a gzipped tar): the manifest first, then one COPY text file per table. */
export const manifestName = 'manifest.json';
export const dataFileOf = (table: string): string => `data/${table}.copy`;

export const backupFormat = 'chrysalis-backup';
export const backupFormatVersion = 1;

const identifier = z.string().regex(/^[a-z_][a-z0-9_$]*$/i, 'is not a plain SQL identifier');

export const tableEntrySchema = z.strictObject({
  name: identifier,
  /** Stored columns in table order (generated columns are left to the database). */
  columns: z.array(identifier).min(1),
  /** `true` for a partitioned table: its rows are copied through the parent and land in the partitions again. */
  partitioned: z.boolean(),
  file: z.string(),
  rows: z.number().int().min(0),
  bytes: z.number().int().min(0),
  /** Hex SHA-256 of the data file. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const manifestSchema = z.strictObject({
  format: z.literal(backupFormat),
  version: z.literal(backupFormatVersion),
  created_at: z.iso.datetime(),
  /** `server_version` of the PostgreSQL that was backed up. */
  server_version: z.string(),
  /** The migrations the snapshot had run, in order: a restore runs exactly these before loading the data. */
  migrations: z.array(z.string().min(1)).min(1),
  tables: z.array(tableEntrySchema),
  sequences: z.array(z.strictObject({ name: identifier, last_value: z.string().regex(/^-?\d+$/), is_called: z.boolean() })),
});

export type SnapshotManifest = z.infer<typeof manifestSchema>;
export type TableEntry = z.infer<typeof tableEntrySchema>;

/** `"name"`: every identifier here was checked to be plain, so quoting it is enough. */
export const quoted = (name: string): string => `"${name.replaceAll('"', '""')}"`;
