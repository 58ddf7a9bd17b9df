// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**', 'tests/browser/__screenshots__/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: "CallExpression[callee.name='eval']", message: 'Never eval.' }, { selector: "NewExpression[callee.name='Function']", message: 'Never new Function.' }],
      'no-restricted-properties': [
        'error',
        { property: 'transactional', message: "Use inTransaction (db/transaction.ts): MikroORM's transactional switches on promise hooks for the whole process." },
        { property: 'flush', object: 'em', message: "Raw SQL through em.execute: flush runs in an AsyncLocalStorage, which switches on promise hooks for the whole process." },
      ],
      'no-restricted-imports': ['error', { paths: [{ name: 'node:vm', message: 'Never vm on user input.' }, { name: 'vm', message: 'Never vm on user input.' }] }],
    },
  },
);
