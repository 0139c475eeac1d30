// Two views of one smtpd.conf: the tokens the lexer reads from one line,
// and the rules the parser builds from the whole file.
import { readFileSync } from 'node:fs';
import { describeRules, parseConfig, tokenize } from '@saf/impl/config';

const file = 'smtpd.conf';
const text = readFileSync(file, 'utf8');

// The lexer alone does not know the file's macros (the parser defines
// them as it goes), so give it the one this line uses.
const line = text.split('\n').find((l) => l.startsWith('listen on'))!;
const { tokens } = tokenize(line, { file, macros: { lan_addr: '127.0.0.1' } });
console.log(`The lexer reads: ${line}`);
for (const t of tokens) {
  const from = t.macro ? `  (from $${t.macro})` : '';
  console.log(`  ${t.kind.padEnd(7)} ${JSON.stringify(t.text)}${from}`);
}

const { config, errors } = parseConfig(text, { file });
for (const e of errors) console.log(String(e));
console.log('\nThe parser builds these rules, tried in this order:');
process.stdout.write(describeRules(config));
