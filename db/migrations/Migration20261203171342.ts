import { Migration } from '@mikro-orm/migrations';

export class Migration20261203171342 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "webhook_endpoints" add column "consecutive_failures" int not null default 0, add column "failing_since" timestamptz null, add column "breaker_open_until" timestamptz null, add column "breaker_opens" int not null default 0, add column "disabled_at" timestamptz null, add column "disabled_reason" text null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_endpoints" drop column "consecutive_failures", drop column "failing_since", drop column "breaker_open_until", drop column "breaker_opens", drop column "disabled_at", drop column "disabled_reason";`);
  }

}
