#!/usr/bin/env node
// smtpctl(8): runs the TypeScript source through tsx, so a checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
const { smtpctl } = await import('../src/cli/smtpctl.ts');
process.exitCode = await smtpctl(process.argv.slice(2));
