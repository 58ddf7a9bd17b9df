#!/usr/bin/env node
// The CLI is TypeScript run through tsx (a dependency), so the workspace needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
