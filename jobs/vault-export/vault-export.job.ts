import { createHash } from 'node:crypto';
import { z } from 'zod';
import { activeVaultKeys, recordVaultExport } from '../../db/repositories/vault.js';
import { defineJob } from '../define-job.js';
import { renderVaultCsv } from './vault-csv.js';
import { writeFileAtomically } from './write-file-atomically.js';

export const vaultExportPayloadSchema = z.strictObject({});

export const vaultExportResultSchema = z.object({
  path: z.string(),
  rows: z.number().int(),
  bytes: z.number().int(),
  sha256: z.string(),
  export_id: z.string(),
});

export const vaultExportJob = defineJob({
  name: 'vault-export',
  description: 'Write the API-key vault CSV the edge proxy reads (active keys of enabled, unsuspended services) to VAULT_PATH, atomically.',
  payload: vaultExportPayloadSchema,
  result: vaultExportResultSchema,
  adminOnly: true,
  queue: { attempts: 3, backoffMs: 5_000, concurrency: 1 },
  schedule: (config) => ({ every: config.vaultExportEveryMs }),
  async process(_payload, ctx) {
    const rows = await activeVaultKeys(ctx.em);
    const csv = Buffer.from(renderVaultCsv(rows), 'utf8');
    const sha256 = createHash('sha256').update(csv).digest('hex');
    const target = ctx.config.vaultPath;
    await writeFileAtomically(target, csv);
    // Recorded after the rename: a recorded export is one a reader can have seen.
    const record = await recordVaultExport(ctx.em, { path: target, rowCount: rows.length, bytes: csv.length, sha256 });
    ctx.logger.info({ path: target, rows: rows.length, sha256 }, 'vault exported');
    return { path: target, rows: rows.length, bytes: csv.length, sha256, export_id: record.id };
  },
});
