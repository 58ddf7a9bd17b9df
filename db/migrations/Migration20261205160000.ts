import { Migration } from '@mikro-orm/migrations';

/**
 * `jobs.bundle_id`: the BullMQ job that carries a job with others of its submit (queue/bundles.ts). The sweeper
 * looks a bundled row's transport up under it. Nullable, no default: adding it rewrites nothing.
 */
export class Migration20261205160000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "jobs" add column "bundle_id" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "jobs" drop column "bundle_id";`);
  }
}
