import { Migration } from '@mikro-orm/migrations';

/** The deliveries still to send, for the sweep that gives back to the queue a delivery whose BullMQ job was lost (workers/webhooks/delivery-sweep.ts). */
export class Migration20261208012355 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "webhook_deliveries_pending_index" on "webhook_deliveries" ("id") where "state" = 'pending';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "webhook_deliveries_pending_index";`);
  }

}
