#!/usr/bin/env node
// makemap(8): runs the TypeScript source through tsx, so a checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
const { makemap } = await import('../src/cli/makemap.ts');
process.exitCode = makemap(process.argv.slice(2));
