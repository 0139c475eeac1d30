/**
 * Reading smtpd.conf: the public face of the configuration package.
 *
 *     const { config, errors } = parseConfig(text, { file: 'smtpd.conf' });
 *     const { config, errors } = loadConfig('/etc/smtpd.conf', { macros: { lan: '10.0.0.1' } });
 *
 * `errors` is empty when the file is valid; otherwise each error has the
 * file, line and column, a message and often a hint.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.ts';
import { parseConfig, type ParseResult } from './parser.ts';
import { emptyConfig } from './ast.ts';

export * from './ast.ts';
export { ConfigError, ConfigWarning, closestWord, editDistance } from './errors.ts';
export { authWithoutTable, checkFiles, type FileAccess } from './check-files.ts';
export { describeRules, formatConfig, formatStatement } from './format.ts';
export { Lexer, tokenize, type Token } from './lexer.ts';
export { MacroTable, parseMacroOverride } from './macros.ts';
export { parseConfig, type ParseOptions, type ParseResult } from './parser.ts';

/**
 * Reads and parses a file, and (unless `checkFiles` is false) opens the
 * files it names, as `smtpd -n` does. A file that cannot be read is
 * reported as an error (at line 0), not thrown.
 */
export function loadConfig(path: string, options: { macros?: Record<string, string>; checkFiles?: boolean } = {}): ParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    return { config: emptyConfig(), errors: [new ConfigError({ file: path, line: 0, col: 0 }, `cannot read the configuration: ${reason}`)], warnings: [] };
  }
  return parseConfig(text, { file: path, checkFiles: options.checkFiles ?? true, ...(options.macros && { macros: options.macros }) });
}
