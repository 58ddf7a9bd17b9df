/**
 * `chrysalis`: the command line for the Chrysalis API. Every command takes `--json` (machine-readable stdout),
 * `--base-url` and `--profile`; credentials come from `chrysalis login` (kept per profile in
 * ~/.config/chrysalis/config.json or $CHRYSALIS_CONFIG) or $CHRYSALIS_TOKEN. Exit codes: 0 done, 1 the API
 * refused or the work failed, 2 the command line was wrong.
 */
import { Command, CommanderError, Option } from 'commander';
import fs from 'node:fs';
import { isJob, type ChrysalisClient } from '../client.js';
import { isFinal, type Job, type JobAccepted, type SubmitJobRequest } from '../types.js';
import { batchCommand } from './batch-command.js';
import { loginCommand, logoutCommand } from './login-command.js';
import { Output, parseJsonOption, parseParams, UsageError } from './output.js';
import { clientFor, type GlobalOptions } from './session.js';

const program = new Command('chrysalis')
  .description('Submit and follow Chrysalis jobs from the command line')
  .option('--base-url <url>', 'API base URL (default: $CHRYSALIS_BASE_URL, the profile’s, or http://127.0.0.1:3000)')
  .option('--profile <name>', 'credentials profile (default: $CHRYSALIS_PROFILE or "default")')
  .option('--json', 'print JSON on stdout, for scripts')
  .showHelpAfterError()
  .exitOverride();

/** Runs a command with the global options, a client and the output; its return value is the exit code. */
function action<A extends unknown[]>(
  run: (context: { client: () => ChrysalisClient; out: Output; globals: GlobalOptions }, ...args: A) => Promise<number | void>,
) {
  return async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const globals = command.optsWithGlobals<GlobalOptions>();
    const out = new Output(Boolean(globals.json));
    const client = () => clientFor(globals, (ms) => out.note(`rate limited: waiting ${(ms / 1000).toFixed(1)} s as the API asked`));
    try {
      process.exitCode = (await run({ client, out, globals }, ...(args.slice(0, -1) as A))) ?? 0;
    } catch (error) {
      if (error instanceof UsageError) {
        out.note(`error: ${error.message}`);
        process.exitCode = 2;
      } else process.exitCode = out.failure(error);
    }
  };
}

const describeJob = (job: Job | JobAccepted) => {
  const lines = [`job ${job.id} (${job.type}): ${job.state}`];
  if (isJob(job) && job.result !== undefined) lines.push(`result: ${JSON.stringify(job.result)}`);
  if (isJob(job) && job.error) lines.push(`error: ${job.error}`);
  return lines.join('\n');
};

/** 1 when a waited-for job ended failed or cancelled, so scripts can tell. */
const exitCodeOf = (job: Job | JobAccepted) => (job.state === 'failed' || job.state === 'cancelled' ? 1 : 0);

const integer = (name: string) => (value: string) => {
  if (!/^\d+$/.test(value)) throw new UsageError(`${name}: expected a whole number, got ${value}`);
  return Number(value);
};

const waitOption = () =>
  new Option('--wait [seconds]', 'wait until the job is final (Prefer: wait, then polling); give up after [seconds] (default 300)');

const waitSecondsOf = (wait: true | string | undefined) => (wait === undefined ? null : wait === true ? 300 : integer('--wait')(wait));

program
  .command('login')
  .description('store credentials for a profile: an API key, or a login (email and password)')
  .option('--email <email>', 'log in with this account')
  .option('--password <password>', 'its password (visible in `ps`; prefer --password-stdin)')
  .option('--password-stdin', 'read the password from stdin')
  .option('--api-key <key>', 'store this API key (sk_live_…) instead of logging in')
  .option('--api-key-stdin', 'read the API key from stdin')
  .action(action(async ({ out, globals }, options: Parameters<typeof loginCommand>[1]) => loginCommand(globals, options, out)));

program
  .command('logout')
  .description('forget the profile’s credentials (and revoke its refresh token)')
  .action(action(async ({ out, globals }) => logoutCommand(globals, out)));

program
  .command('submit')
  .description('submit a job: chrysalis submit invoke --payload \'{"substrate_id":"0x…","parameters":{"x":5}}\'')
  .argument('<type>', 'job type (invoke, divide, batch; metering, billing, vault-export for admins)')
  .option('--payload <json>', 'the job’s payload as JSON', '{}')
  .addOption(waitOption())
  .option('--priority <n>', '1 is the most urgent', integer('--priority'))
  .option('--delay-ms <ms>', 'run no sooner than this', integer('--delay-ms'))
  .option('--attempts <n>', 'attempts before it fails', integer('--attempts'))
  .option('--webhook-url <url>', 'signed POST when it finishes')
  .option('--idempotency-key <key>', 'the same key and body within 24 h give back the same job')
  .action(
    action(
      async (
        { client, out },
        type: string,
        options: {
          payload: string;
          wait?: true | string;
          priority?: number;
          delayMs?: number;
          attempts?: number;
          webhookUrl?: string;
          idempotencyKey?: string;
        },
      ) => {
        const body = {
          type,
          payload: parseJsonOption('--payload', options.payload),
          ...(options.priority !== undefined ? { priority: options.priority } : {}),
          ...(options.delayMs !== undefined ? { delay_ms: options.delayMs } : {}),
          ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
          ...(options.webhookUrl ? { webhook_url: options.webhookUrl } : {}),
        } as SubmitJobRequest;
        const waitSeconds = waitSecondsOf(options.wait);
        const idempotency = options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {};
        const job =
          waitSeconds === null
            ? await client().submit(body, idempotency)
            : await client().run(body, { ...idempotency, timeoutMs: waitSeconds * 1000 });
        out.result(job, describeJob);
        return exitCodeOf(job);
      },
    ),
  );

program
  .command('invoke')
  .description('invoke a substrate: chrysalis invoke 0x… --param x=5 --param y=2 --wait')
  .argument('<substrate>', 'substrate id (0x + 16 hex digits)')
  .option(
    '--param <name=value>',
    'a parameter (repeatable); values that read as JSON are numbers, booleans…',
    (value: string, all: string[]) => [...all, value],
    [] as string[],
  )
  .addOption(waitOption())
  .action(
    action(async ({ client, out }, substrate: string, options: { param: string[]; wait?: true | string }) => {
      const parameters = parseParams(options.param);
      const waitSeconds = waitSecondsOf(options.wait);
      const api = client();
      let job: Job | JobAccepted = await api.invoke(
        substrate,
        parameters,
        waitSeconds === null ? {} : { waitSeconds: Math.min(30, waitSeconds) },
      );
      if (waitSeconds !== null && !(isJob(job) && isFinal(job.state))) job = await api.waitFor(job.id, { timeoutMs: waitSeconds * 1000 });
      out.result(job, describeJob);
      return waitSeconds === null ? 0 : exitCodeOf(job);
    }),
  );

program
  .command('batch')
  .description('run every line of an NDJSON file ({"substrate_id": "0x…", "parameters": {…}} each) as a batch, with a progress bar')
  .argument('<file>', 'NDJSON file, one invocation per line')
  .option('--no-progress', 'no progress bar')
  .action(
    action(async ({ client, out }, file: string, options: { progress: boolean }) => {
      if (!fs.existsSync(file)) throw new UsageError(`${file}: no such file`);
      return batchCommand(client(), file, options, out);
    }),
  );

const jobs = program.command('jobs').description('list, show, retry and cancel jobs');

jobs
  .command('list')
  .description('your jobs, newest first')
  .option('--type <type>', 'only this job type')
  .option('--state <state>', 'only this state (queued, delayed, active, completed, failed, cancelled)')
  .option('--limit <n>', 'jobs per page (1–100)', integer('--limit'), 20)
  .option('--cursor <cursor>', 'the next_cursor of the previous page')
  .action(
    action(async ({ client, out }, options: { type?: string; state?: string; limit: number; cursor?: string }) => {
      const query = {
        limit: options.limit,
        ...(options.type ? { type: options.type } : {}),
        ...(options.state ? { state: options.state } : {}),
        ...(options.cursor ? { cursor: options.cursor } : {}),
      };
      const page = await client().listJobs(query as Parameters<ChrysalisClient['listJobs']>[0]);
      out.result(
        page,
        (value) =>
          [
            ...value.items.map((job) => `${job.id}  ${job.type.padEnd(12)} ${job.state.padEnd(10)} ${job.created_at}`),
            ...(value.next_cursor ? [`more: --cursor ${value.next_cursor}`] : []),
          ].join('\n') || 'no jobs',
      );
    }),
  );

jobs
  .command('get')
  .argument('<id>', 'job id')
  .description('one job: state, result or error')
  .action(action(async ({ client, out }, id: string) => out.result(await client().getJob(id), describeJob)));

jobs
  .command('retry')
  .argument('<id>', 'a failed or cancelled job')
  .description('run a failed or cancelled job again as a new job (same type, payload and options)')
  .action(
    action(async ({ client, out }, id: string) => out.result(await client().retry(id), (job) => `${describeJob(job)}\nretry of ${id}`)),
  );

jobs
  .command('cancel')
  .argument('<id>', 'a job that is not final yet')
  .description('cancel a queued, delayed or running job')
  .action(action(async ({ client, out }, id: string) => out.result(await client().cancel(id), describeJob)));

program
  .command('events')
  .argument('<job>', 'job id')
  .description('follow a job’s events until it is final (reconnects when the stream drops)')
  .action(
    action(async ({ client, out }, id: string) => {
      for await (const event of client().events(id)) {
        out.result(event, (value) => {
          if (value.event === 'progress') return `progress ${JSON.stringify(value.data.progress)}`;
          return isFinal(value.data.state) ? describeJob(value.data as Job) : `state ${value.data.state}`;
        });
      }
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // --help and --version end here too, with exit code 0.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
    return;
  }
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
