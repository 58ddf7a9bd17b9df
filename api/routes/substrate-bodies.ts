import { z } from 'zod';
import { atMostItems, atMostJson, atMostKeys } from '../../jobs/input-limits.js';

/**
 * The bodies of the substrate routes that create or change substrates. Apart from the routes (which reach the
 * database) so the batch checker's thread (substrate-batch.task.ts) can load them.
 */
const metadataSchema = atMostJson(atMostKeys(z.record(z.string().min(1).max(128), z.unknown()), 64, 'metadata keys'), 8192, 'metadata');

export const createSubstrateBody = z.discriminatedUnion('expression_type', [
  z.strictObject({ expression_type: z.literal('expression'), expression: z.string().min(1), metadata: metadataSchema.optional() }),
  z.strictObject({ expression_type: z.literal('constant'), value: z.number().finite(), metadata: metadataSchema.optional() }),
]);
export type CreateSubstrate = z.infer<typeof createSubstrateBody>;

export const createSubstratesBatchBody = z.strictObject({
  substrates: atMostItems(z.array(createSubstrateBody).min(1), 1000, 'substrates'),
});
/** What the batch route parses at once: the list itself; its items are checked one by one (checkBatchItems). */
export const batchEnvelope = z.strictObject({ substrates: atMostItems(z.array(z.unknown()).min(1), 1000, 'substrates') });
export const patchSubstrateBody = z.strictObject({ metadata: metadataSchema });

/**
 * A substrate's name is `metadata.name` (SPEC §5 gives a substrate no other): `?name=` filters on it, and a
 * top-level `name` in a body is answered with where it goes rather than a bare "unknown field".
 */
export const nameHint = {
  name: 'unknown field: a substrate\'s name is metadata.name ({"metadata": {"name": …}}), which GET /substrates?name= matches',
};
