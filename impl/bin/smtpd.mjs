#!/usr/bin/env node
// smtpd(8): runs the TypeScript source through tsx, so a checkout needs no build step.
import { register } from 'tsx/esm/api';

register();
const { smtpd } = await import('../src/cli/smtpd.ts');
process.exitCode = await smtpd(process.argv.slice(2));
