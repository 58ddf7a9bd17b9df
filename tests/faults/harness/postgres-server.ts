import pg from 'pg';
import { ensureLocalServices, type LocalServices } from '../../../ops/local-services.js';

/**
 * The suite's own PostgreSQL cluster (initialised by global-setup in a temp dir, on a port remembered
 * there), started and stopped by the scenario that owns it: a stop is PostgreSQL's fast shutdown, which
 * drops every connection, as a database restart or failover does. The port stays the same across restarts.
 */
export class FaultPostgres {
  private services: LocalServices | null = null;
  private adminUrl = '';

  constructor(private readonly dataDir: string) {}

  get running(): boolean {
    return this.services !== null;
  }

  /** Starts the cluster; resolves when it answers queries. Returns the URL of its `postgres` database. */
  async start(): Promise<string> {
    if (!this.services) {
      this.services = await ensureLocalServices({ dataDir: this.dataDir, redis: false });
      this.adminUrl = withDatabase(this.services.databaseUrl, 'postgres');
    }
    return this.adminUrl;
  }

  /** Fast shutdown; resolves once the server process has exited. */
  async stop(): Promise<void> {
    const services = this.services;
    this.services = null;
    await services?.stop();
  }

  /** A fresh database cloned from the migrated template; returns its URL. */
  async createDatabase(name: string, template: string): Promise<string> {
    const admin = new pg.Client({ connectionString: await this.start() });
    await admin.connect();
    try {
      await admin.query(`create database ${admin.escapeIdentifier(name)} template ${admin.escapeIdentifier(template)}`);
    } finally {
      await admin.end();
    }
    return withDatabase(this.adminUrl, name);
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
