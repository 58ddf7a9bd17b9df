import { createHash } from 'node:crypto';
import { z } from 'zod';
import { forEachActiveVaultKeyBatch, recordVaultExport } from '../../db/repositories/vault.js';
import { defineJob } from '../define-job.js';
import { renderVaultLines, vaultCsvHeader } from './vault-csv.js';
import { writeFileAtomically } from './write-file-atomically.js';

/** Keys read, rendered and written per step: a few milliseconds of the worker's event loop each, and that much memory. */
const vaultBatchRows = 2000;

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
    const target = ctx.config.vaultPath;
    const digest = createHash('sha256');
    let bytes = 0;
    let rows = 0;
    await writeFileAtomically(target, async (write) => {
      const put = async (text: string) => {
        const chunk = Buffer.from(text, 'utf8');
        digest.update(chunk);
        bytes += chunk.length;
        await write(chunk);
      };
      await put(`${vaultCsvHeader}\n`);
      rows = await forEachActiveVaultKeyBatch(ctx.em, vaultBatchRows, (batch) => put(renderVaultLines(batch)), ctx.signal);
    });
    const sha256 = digest.digest('hex');
    // Recorded after the rename: a recorded export is one a reader can have seen.
    const record = await recordVaultExport(ctx.em, { path: target, rowCount: rows, bytes, sha256 });
    ctx.logger.info({ path: target, rows, sha256 }, 'vault exported');
    return { path: target, rows, bytes, sha256, export_id: record.id };
  },
});
