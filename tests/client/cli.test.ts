import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { bullJob } from '../helpers/queues.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

// FIFO: a test promotes a delayed job through BullMQ (fair sharing holds it in the shard's delayed set instead).
const suite = useTestApp({ workers: true, users: 1, env: { FAIR_SHARING: 'false' } });
const bin = path.resolve('clients/typescript/bin/chrysalis.js');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-cli-'));
const configFile = path.join(home, 'config.json');
let user: TestUser;
let substrateId: string;

beforeAll(async () => {
  user = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, user.accessToken, 'x * y');
});

afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `chrysalis ARGS` as a user would (its own process, its own config file), feeding `input` on stdin. */
function start(args: string[], input = '') {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH, HOME: home, CHRYSALIS_CONFIG: configFile, CHRYSALIS_BASE_URL: suite.app.baseUrl },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { done, stdout: () => stdout };
}

const chrysalis = (args: string[], input = ''): Promise<Run> => start(args, input).done;

const json = (run: Run) => {
  expect(run.code, run.stderr).not.toBe(2);
  return JSON.parse(run.stdout);
};

describe('the chrysalis CLI against a running instance', () => {
  it('logs in with a password from stdin and keeps the tokens in its config file, readable by its owner only', async () => {
    const login = await chrysalis(['login', '--email', user.email, '--password-stdin'], `${user.password}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`logged in as ${user.email}`);
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    expect(config.profiles.default).toMatchObject({
      base_url: suite.app.baseUrl,
      email: user.email,
      access_token: expect.any(String),
      refresh_token: expect.any(String),
    });
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o600);

    const wrong = await chrysalis(['login', '--profile', 'other', '--email', user.email, '--password-stdin'], 'not the password\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/error: .*\(401\)/);
  });

  it('invokes a substrate with --param and --wait, answering the finished job', async () => {
    const run = await chrysalis(['invoke', substrateId, '--param', 'x=6', '--param', 'y=7', '--wait', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run)).toMatchObject({ state: 'completed', result: { result: 42 } });

    const human = await chrysalis(['invoke', substrateId, '--param', 'x=2', '--param', 'y=2', '--wait']);
    expect(human.stdout).toMatch(/^job [0-9a-f-]+ \(invoke\): completed\nresult: \{.*"result":4/);
  });

  it('submits a job type with a JSON payload, and names the field a bad payload got wrong', async () => {
    const run = await chrysalis([
      'submit',
      'invoke',
      '--payload',
      JSON.stringify({ substrate_id: substrateId, parameters: { x: 3, y: 5 } }),
      '--wait',
      '--json',
    ]);
    expect(json(run)).toMatchObject({ type: 'invoke', state: 'completed', result: { result: 15 } });

    const bad = await chrysalis(['submit', 'invoke', '--payload', '{"substrate_id": 12}']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/\(400\)/);
    expect(bad.stderr).toContain('body.payload.substrate_id');
    const notJson = await chrysalis(['submit', 'invoke', '--payload', '{oops']);
    expect(notJson.code).toBe(2);
  });

  it('runs a 5,000-line NDJSON batch with a progress bar and a summary naming the failed lines', async () => {
    const file = path.join(home, 'invocations.ndjson');
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ substrate_id: substrateId, parameters: { x: i, y: 2 } }));
    lines[41] = JSON.stringify({ substrate_id: '0x0000000000000001', parameters: { x: 1, y: 1 } });
    lines[4999] = JSON.stringify({ substrate_id: substrateId, parameters: { x: 1 } });
    fs.writeFileSync(file, lines.join('\n') + '\n');

    const run = await chrysalis(['batch', file, '--json']);
    console.log(`[cli] chrysalis batch (5,000 lines), progress on stderr:\n${run.stderr.trimEnd()}`);
    expect(run.code, run.stderr).toBe(1);
    const bars = run.stderr.split('\n').filter((line) => line.startsWith('batch |'));
    expect(bars.length).toBeGreaterThanOrEqual(2);
    expect(bars[0]).toMatch(/ 0\/5000 done/);
    expect(bars.at(-1)).toMatch(/100% \| 5000\/5000 done \| 2 failed/);
    const summary = json(run);
    expect(summary).toMatchObject({ total: 5000, completed: 4998, failed: 2 });
    expect(summary.failed_items.map((item: { line: number }) => item.line)).toEqual([42, 5000]);

    const human = await chrysalis(['batch', file, '--no-progress']);
    expect(human.stderr).toBe('');
    expect(human.stdout).toMatch(
      /^5000 items in 1 batch \(.+\): 4998 completed, 2 failed\n {2}line 42: 0x0000000000000001: .+\n {2}line 5000: /,
    );

    fs.writeFileSync(file, lines.slice(0, 3).join('\n') + '\n{broken\n');
    const broken = await chrysalis(['batch', file]);
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain(`${file}:4: not valid JSON`);
  }, 120_000);

  it('lists, shows, cancels and retries jobs (retry skipped while POST /jobs/:id/retry is not served)', async (context) => {
    const delayed = json(
      await chrysalis([
        'submit',
        'invoke',
        '--payload',
        JSON.stringify({ substrate_id: substrateId, parameters: { x: 1, y: 1 } }),
        '--delay-ms',
        '3600000',
        '--json',
      ]),
    );
    expect(delayed.state).toBe('delayed');
    const list = json(await chrysalis(['jobs', 'list', '--state', 'delayed', '--json']));
    expect(list.items.map((job: { id: string }) => job.id)).toContain(delayed.id);
    expect((await chrysalis(['jobs', 'list'])).stdout).toContain(`${delayed.id}  invoke`);
    expect(json(await chrysalis(['jobs', 'get', delayed.id, '--json']))).toMatchObject({ id: delayed.id, state: 'delayed' });
    expect(json(await chrysalis(['jobs', 'cancel', delayed.id, '--json']))).toMatchObject({ id: delayed.id, state: 'cancelled' });
    const again = await chrysalis(['jobs', 'cancel', delayed.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/\(409\)/);

    const retry = await chrysalis(['jobs', 'retry', delayed.id, '--json']);
    if (retry.code === 1 && /no route for POST/.test(retry.stderr))
      return context.skip('POST /jobs/:id/retry is not served by this API yet');
    expect(retry.code, retry.stderr).toBe(0);
    const retried = json(retry);
    expect(retried.id).not.toBe(delayed.id);
  });

  it('tails a job’s events until it is final, one JSON line per event with --json', async () => {
    const accepted = json(
      await chrysalis([
        'submit',
        'invoke',
        '--payload',
        JSON.stringify({ substrate_id: substrateId, parameters: { x: 9, y: 9 } }),
        '--delay-ms',
        '3600000',
        '--json',
      ]),
    );
    const tail = start(['events', accepted.id, '--json']);
    await waitFor(async () => tail.stdout().includes('"delayed"'), 20_000);
    // The job runs now rather than in an hour, while the CLI is following it.
    await (await bullJob(suite.app.deps.queues, 'invoke', accepted.id))!.promote();
    const run = await tail.done;
    expect(run.code, run.stderr).toBe(0);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events[0]).toMatchObject({ event: 'state', data: { state: 'delayed' } });
    expect(events.at(-1)).toMatchObject({ event: 'state', data: { state: 'completed', result: { result: 81 } } });
  });

  it('uses an API key stored with login --api-key-stdin in another profile', async () => {
    const created = await suite.request('POST', '/api/v1/api-keys', {
      token: user.accessToken,
      body: { name: 'cli', service_type: 'compute' },
    });
    expect(created.status, created.text).toBe(201);
    const login = await chrysalis(['login', '--profile', 'ci', '--api-key-stdin'], `${created.body.key}\n`);
    expect(login.code, login.stderr).toBe(0);
    const run = await chrysalis(['--profile', 'ci', 'invoke', substrateId, '--param', 'x=10', '--param', 'y=10', '--wait', '--json']);
    expect(json(run)).toMatchObject({ state: 'completed', result: { result: 100 } });
  });
});
