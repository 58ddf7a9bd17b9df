// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const vmPaths = [
  { name: 'node:vm', message: 'Never vm on user input.' },
  { name: 'vm', message: 'Never vm on user input.' },
];

/**
 * The floor plan (README, "Architecture"): the folders of ours each runtime folder must not import. Data
 * flows down: api/ and workers/ → queue/ → jobs/ → db/ → lib/ → config.ts; ops/ and tests/ may import
 * anything and nothing outside them imports ops/.
 */
const forbiddenImports = {
  lib: {
    folders: ['api', 'workers', 'queue', 'jobs', 'db', 'ops'],
    message: 'lib/ is shared by every folder, so it imports none of ours but config.ts.',
  },
  db: { folders: ['api', 'workers', 'queue', 'jobs', 'ops'], message: 'db/ imports lib/ (and config.ts) only.' },
  jobs: { folders: ['api', 'workers', 'queue', 'ops'], message: 'jobs/ says what work exists: it imports db/ and lib/ only.' },
  queue: {
    folders: ['api', 'workers', 'ops'],
    message: 'queue/ produces work for api/ and workers/: it imports jobs/, db/ and lib/ only.',
  },
  workers: { folders: ['api', 'ops'], message: 'workers/ never imports api/ (what both need is in queue/ or lib/) nor ops/.' },
  api: { folders: ['workers', 'ops'], message: 'api/ never imports workers/ (what both need is in queue/ or lib/) nor ops/.' },
};

/** A regex for imports that climb `depth` folders to the root and go into one of `folders`. */
const into = (depth, folders) => `^${depth === 0 ? '\\./' : `(\\.\\./){${depth}}`}(${folders.join('|')})(/|$)`;

/** Everywhere: no eval, no new Function (user input reaches expression evaluation). */
const baseRestrictedSyntax = [
  { selector: "CallExpression[callee.name='eval']", message: 'Never eval.' },
  { selector: "NewExpression[callee.name='Function']", message: 'Never new Function.' },
];

/** One config object per folder depth, since a relative import's target depends on where it is written. */
function floorPlan() {
  const configs = [];
  for (const [folder, { folders, message }] of Object.entries(forbiddenImports)) {
    for (let depth = 1; depth <= 5; depth++) {
      const patterns = [{ regex: into(depth, folders), message }];
      // Connections are opened at the edges and reach job processors through ctx.
      if (folder === 'jobs')
        patterns.push({
          regex: `^(\\.\\./){${depth}}(lib/redis|db/orm|db/mikro-orm\\.config)(\\.js)?$`,
          message: 'Nothing under jobs/ opens a connection: take it from ctx.',
        });
      configs.push({
        files: [`${folder}/${'*/'.repeat(depth - 1)}*.ts`],
        rules: { 'no-restricted-imports': ['error', { paths: vmPaths, patterns }] },
      });
    }
  }
  for (let depth = 2; depth <= 5; depth++) {
    configs.push({
      files: [`jobs/${'*/'.repeat(depth - 1)}*.task.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            paths: vmPaths,
            patterns: [
              {
                regex: `^(\\.\\./){${depth},}(?!jobs/)`,
                message: 'A Piscina task file is a pure entry module: it imports nothing outside jobs/.',
              },
            ],
          },
        ],
      },
    });
  }
  configs.push({
    files: ['config.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: vmPaths,
          patterns: [
            { regex: into(0, ['api', 'workers', 'queue', 'jobs', 'db', 'lib', 'ops']), message: 'config.ts imports nothing of ours.' },
          ],
        },
      ],
    },
  });
  // Values only: a type from these is fine, a client is a connection.
  configs.push({
    files: ['jobs/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['ioredis', 'pg', 'bullmq'].map((name) => ({
            name,
            allowTypeImports: true,
            message: 'Nothing under jobs/ opens a connection: take it from ctx.',
          })),
        },
      ],
    },
  });
  // One factory makes every Redis connection (lib/redis.ts createRedis), so a process configured for a
  // Redis Cluster (REDIS_CLUSTER_NODES) never opens a single-node client by mistake. Types are fine.
  configs.push({
    files: ['api/**/*.ts', 'workers/**/*.ts', 'queue/**/*.ts', 'db/**/*.ts', 'lib/**/*.ts'],
    ignores: ['lib/redis.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'ioredis',
              allowTypeImports: true,
              message: 'Make Redis connections with createRedis (lib/redis.ts): it makes a cluster client when REDIS_CLUSTER_NODES is set.',
            },
          ],
        },
      ],
      // createRedis turns ioredis's resubscription off (it leaves the answer unhandled): a client subscribed
      // directly would hear nothing after a reconnect. The job waiter's own `subscribe` is not Redis's.
      'no-restricted-syntax': [
        'error',
        ...baseRestrictedSyntax,
        {
          selector:
            "CallExpression[callee.property.name=/^[ps]?subscribe$/]:not([callee.object.name='waiter']):not([callee.object.property.name='waiter'])",
          message: 'Subscribe with subscribe(client, ...channels) (lib/redis.ts): it subscribes again after each reconnect.',
        },
      ],
    },
  });
  return configs;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**', 'tests/browser/__screenshots__/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        fetch: 'readonly',
        structuredClone: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', ...baseRestrictedSyntax],
      'no-restricted-properties': [
        'error',
        {
          property: 'transactional',
          message: "Use inTransaction (db/transaction.ts): MikroORM's transactional switches on promise hooks for the whole process.",
        },
        {
          property: 'flush',
          object: 'em',
          message: 'Raw SQL through em.execute: flush runs in an AsyncLocalStorage, which switches on promise hooks for the whole process.',
        },
        ...['mock', 'doMock'].map((property) => ({
          object: 'vi',
          property,
          message:
            "Test files share their fork's modules (vitest.config.ts isolate: false), so a module mock would not apply: observe the real part instead.",
        })),
      ],
      'no-restricted-imports': ['error', { paths: vmPaths }],
    },
  },
  ...floorPlan(),
  // The console's pages run in the browser (plain ES modules, no build step). No sessionStorage or
  // localStorage: the session is an httpOnly cookie, and nothing secret belongs where a script can read it.
  {
    files: ['api/console/static/**/*.js'],
    languageOptions: {
      globals: {
        document: 'readonly',
        location: 'readonly',
        history: 'readonly',
        EventSource: 'readonly',
        Node: 'readonly',
        CSS: 'readonly',
        TextDecoderStream: 'readonly',
        URLSearchParams: 'readonly',
        confirm: 'readonly',
      },
    },
  },
);
