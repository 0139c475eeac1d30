import { expect } from 'vitest';
import { type Config, type ConfigError, parseConfig } from '../../src/config/index.ts';

/** Parses a text that must be valid; fails the test with the errors otherwise. */
export function parseOk(text: string, macros?: Record<string, string>): Config {
  const { config, errors } = parseConfig(text, { file: 'smtpd.conf', ...(macros && { macros }) });
  expect(errors.map(String)).toEqual([]);
  return config;
}

/** Parses a text that must be invalid; returns its errors. */
export function parseErrors(text: string, macros?: Record<string, string>): ConfigError[] {
  const { errors } = parseConfig(text, { file: 'smtpd.conf', ...(macros && { macros }) });
  expect(errors.length).toBeGreaterThan(0);
  return errors;
}

/** A rule that makes a fragment a complete configuration (smtpd refuses a file without rules). */
export const RULE = '\nmatch for any reject\n';
