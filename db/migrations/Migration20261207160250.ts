import { Migration } from '@mikro-orm/migrations';

/** `api_keys_customer_live_index`: the tier's cap of API keys (TIER_MAX_API_KEYS) counts a customer's live keys through it. */
export class Migration20261207160250 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "api_keys_customer_live_index" on "api_keys" ("customer_id", "expires_at") where "revoked_at" is null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "api_keys_customer_live_index";`);
  }
}
