import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * The README's Cookbook, run as a reader would paste it (issue 20): every ```sh cookbook block in order, in
 * bash, each with the variables the blocks before it set, against a fresh instance on 127.0.0.1. Each block
 * must exit 0, and the HTTP statuses its curls answer must be the ones its comments document (`# 201`; a
 * status repeated by a polling loop counts once). A .curlrc (CURL_HOME) makes every curl report its status on
 * stderr, so the blocks themselves stay as a reader would type them. The Cookbook's webhook receiver
 * (the ```js block starting `// webhook-receiver.mjs`) runs as a subprocess with the endpoint's secret and must
 * print the deliveries it verified.
 */

const readme = fs.readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/```sh cookbook\n([\s\S]*?)```/g)].map((match) => match[1]!);
const receiverCode = /```js\n(\/\/ webhook-receiver\.mjs[\s\S]*?)```/.exec(readme)?.[1];

/** The statuses a block documents, in order: the `# NNN` comment ending a curl command. */
function documentedStatuses(block: string): number[] {
  return [...block.matchAll(/#\s*(\d{3})\b/g)].map((match) => Number(match[1]));
}

/** Consecutive repeats once: a polling loop answers 200 as often as it polls. */
const collapse = (statuses: number[]) => statuses.filter((status, i) => status !== statuses[i - 1]);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    // Asynchronous on purpose: the API under test answers from this very process.
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket.end() && true));
    socket.once('error', () => resolve(false));
  });
}

let app: TestApp;
let work: string;
let receiver: ChildProcess | null = null;
let receiverOutput = '';
let receiverPort: number;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  work = fs.mkdtempSync(path.join(tmpdir(), 'chrysalis-cookbook-'));
  fs.writeFileSync(path.join(work, '.curlrc'), 'write-out = "%{stderr}cookbook-status %{http_code}\\n"\n');
  receiverPort = await freePort();
});

afterAll(async () => {
  receiver?.kill();
  await app?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Starts the Cookbook's receiver (under .data, so `standardwebhooks` resolves from this project). */
async function startReceiver(secret: string): Promise<void> {
  const dir = path.resolve('.data/test/readme-snippets');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `webhook-receiver-${randomBytes(4).toString('hex')}.mjs`);
  fs.writeFileSync(file, receiverCode!);
  receiver = spawn(process.execPath, [file], {
    env: { ...process.env, WEBHOOK_SECRET: secret, PORT: String(receiverPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  receiver.stdout!.on('data', (chunk: Buffer) => (receiverOutput += chunk.toString()));
  receiver.stderr!.on('data', (chunk: Buffer) => (receiverOutput += chunk.toString()));
  receiver.once('exit', () => fs.rmSync(file, { force: true }));
  await waitFor(() => listening(receiverPort), 15_000, 100);
}

describe("the README's Cookbook", () => {
  it('has command blocks, each documenting the status of every curl, and the receiver snippet', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    for (const block of blocks) {
      const curls = block.split('\n').filter((line) => /^\S*=?\$?\(?curl |^curl |until curl /.test(line.trim())).length;
      expect(documentedStatuses(block).length, block).toBeGreaterThanOrEqual(curls);
    }
    expect(receiverCode).toBeDefined();
  });

  it('runs every block in order with the documented statuses, and the receiver verifies the webhook deliveries', async () => {
    const stateFile = path.join(work, 'state');
    let env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: work,
      CURL_HOME: work,
      BASE: `${app.baseUrl}/api/v1`,
      WEBHOOK_URL: `http://127.0.0.1:${receiverPort}/hooks`,
    };
    for (const block of blocks) {
      // allexport: whatever a block sets, the next one sees, as in one terminal.
      const script = `set -eo pipefail\nset -a\n${block}\nenv -0 > '${stateFile}'\n`;
      const result = await run('bash', ['-c', script], env, work);
      const statuses = [...result.stderr.matchAll(/cookbook-status (\d{3})/g)].map((match) => Number(match[1]));
      const context = `${block}\n--- stdout\n${result.stdout.slice(-2000)}\n--- stderr\n${result.stderr.slice(-2000)}`;
      expect(result.code, context).toBe(0);
      expect(collapse(statuses), context).toEqual(collapse(documentedStatuses(block)));
      env = Object.fromEntries(
        fs
          .readFileSync(stateFile, 'utf8')
          .split('\0')
          .filter(Boolean)
          .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
      );
      if (env.WEBHOOK_SECRET && !receiver) await startReceiver(env.WEBHOOK_SECRET);
    }
    expect(receiver, 'no block registered a webhook (WEBHOOK_SECRET)').not.toBeNull();
    await waitFor(async () => /verified job\.completed [0-9a-f-]{36}/.test(receiverOutput), 60_000, 200);

    // Its bad-input twin: the receiver refuses a delivery that is not signed with the secret.
    const forged = await fetch(`http://127.0.0.1:${receiverPort}/hooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': 'msg_forged',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
      },
      body: JSON.stringify({ type: 'job.completed', timestamp: new Date().toISOString(), data: { job: { id: 'x' } } }),
    });
    expect(forged.status).toBe(400);
  }, 180_000);
});
