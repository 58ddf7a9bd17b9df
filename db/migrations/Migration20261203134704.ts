import { Migration } from '@mikro-orm/migrations';

export class Migration20261203134704 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "escrow_transactions" add column "created_by" uuid null, add column "reason" text null;`);
    this.addSql(`alter table "escrow_transactions" add constraint escrow_transactions_credit_names_who_and_why_check check("tx_type" <> 'credit' or ("created_by" is not null and "reason" is not null));`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "escrow_transactions" drop constraint escrow_transactions_credit_names_who_and_why_check;`);
    this.addSql(`alter table "escrow_transactions" drop column "created_by", drop column "reason";`);
  }

}
