import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** `npm start` when PORT is already taken, e.g. by a Chrysalis started earlier. */
describe('npm start on a busy port', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-busy-port-'));
  // Another instance: it answers every request, its readiness probe included, with 200.
  const other = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}'));

  afterAll(async () => {
    await new Promise((resolve) => other.close(resolve));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops at once with a message naming the port and PORT, never says ready, and launches no database', async () => {
    await new Promise<void>((resolve) => other.listen(0, resolve));
    const { port } = other.address() as AddressInfo;

    const child = spawn('npx', ['tsx', 'ops/start.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'development',
        PORT: String(port),
        DATA_DIR: dataDir,
        // Empty: the launcher would launch embedded PostgreSQL here. Redis: a port nothing listens on, never the shared one.
        DATABASE_URL: '',
        REDIS_URL: 'redis://127.0.0.1:1',
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));

    expect(code, stderr).not.toBe(0);
    expect(stderr).toContain(`port ${port} is in use`);
    expect(stderr).toMatch(/another Chrysalis\?/);
    expect(stderr).toMatch(/PORT=/);
    expect(stdout).not.toMatch(/ready/);
    expect(fs.existsSync(path.join(dataDir, 'postgres'))).toBe(false);
  }, 120_000);
});
