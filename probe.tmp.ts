import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
const env = { ...process.env, DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/chrysalis_migrations', REDIS_URL: 'redis://127.0.0.1:6379', PORT: '3977', LOG_LEVEL: 'warn', QUEUE_PREFIX: '{probe}', READY_REQUIRES_WORKER: 'false', WORKER_METRICS_PORT: '0' };
const api = spawn(process.execPath, ['--import', 'tsx', 'api/main.ts'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
for (let i = 0; i < 100; i++) { const r = await fetch('http://127.0.0.1:3977/api/v1/health').catch(() => null); if (r?.ok) break; await new Promise(r => setTimeout(r, 200)); }
for (const path of ['/api/v1/health', '/nothing-here']) {
  const r = await autocannon({ url: 'http://127.0.0.1:3977' + path, connections: 64, duration: 4 });
  console.log(path, Math.round(r.requests.average), 'req/s', r['2xx'], r.non2xx);
}
api.kill('SIGTERM');
