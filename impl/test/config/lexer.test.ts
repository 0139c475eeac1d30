import { describe, expect, it } from 'vitest';
import { tokenize } from '../../src/config/index.ts';

const kinds = (text: string, macros?: Record<string, string>) =>
  tokenize(text, { file: 'f', ...(macros && { macros }) }).tokens.map((t) => `${t.kind}:${t.text}`);

describe('lexer', () => {
  it('reads words, numbers, punctuation and newlines', () => {
    expect(kinds('listen on lo port 25\n')).toEqual([
      'word:listen', 'word:on', 'word:lo', 'word:port', 'number:25', 'newline:\n',
    ]);
    expect(kinds('table t { a = b, c = d }')).toEqual([
      'word:table', 'word:t', 'punct:{', 'word:a', 'punct:=', 'word:b', 'punct:,',
      'word:c', 'punct:=', 'word:d', 'punct:}',
    ]);
    expect(kinds('match !from src <relays> reject')).toEqual([
      'word:match', 'punct:!', 'word:from', 'word:src', 'punct:<', 'word:relays', 'punct:>', 'word:reject',
    ]);
  });

  it('keeps URLs, addresses and networks as single words', () => {
    expect(kinds('smtp+tls://bob@smtp.example.com:587 10.0.0.0/8 ::1 file:/etc/aliases')).toEqual([
      'word:smtp+tls://bob@smtp.example.com:587', 'word:10.0.0.0/8', 'word:::1', 'word:file:/etc/aliases',
    ]);
  });

  it('reads quoted strings with either quote, keeping other backslashes', () => {
    expect(kinds(`"a b" 'c "d"' "x\\"y" "\\.example\\.com$"`)).toEqual([
      'string:a b', 'string:c "d"', 'string:x"y', 'string:\\.example\\.com$',
    ]);
  });

  it('skips comments but keeps the newline that ends them', () => {
    expect(kinds('listen on lo # the loopback\nmatch')).toEqual([
      'word:listen', 'word:on', 'word:lo', 'newline:\n', 'word:match',
    ]);
  });

  it('joins a line ending in a backslash to the next, also inside strings and comments', () => {
    expect(kinds('action "a" relay \\\n\thost x')).toEqual([
      'word:action', 'string:a', 'word:relay', 'word:host', 'word:x',
    ]);
    expect(kinds('"abc \\\ndef"')).toEqual(['string:abc def']);
    expect(kinds('# comment \\\nstill comment\nword')).toEqual(['newline:\n', 'word:word']);
  });

  it('gives each token its line and column, counting continued lines', () => {
    const { tokens } = tokenize('listen on lo\n  match \\\n  for any', { file: 'f' });
    expect(tokens.map((t) => `${t.text}@${t.loc.line}:${t.loc.col}`)).toEqual([
      'listen@1:1', 'on@1:8', 'lo@1:11', '\n@1:13', 'match@2:3', 'for@3:3', 'any@3:7',
    ]);
  });

  it('expands $macro into tokens located at the reference', () => {
    const { tokens } = tokenize('listen on $opts', { file: 'f', macros: { opts: 'lo tls' } });
    expect(tokens.map((t) => `${t.text}@${t.loc.col}${t.macro ? `($${t.macro})` : ''}`)).toEqual([
      'listen@1', 'on@8', 'lo@11($opts)', 'tls@11($opts)',
    ]);
  });

  it('does not expand macros inside quotes', () => {
    expect(kinds('"$x"', { x: 'lo' })).toEqual(['string:$x']);
  });

  it('reports an argument that must be quoted, and reads on', () => {
    const { tokens, errors } = tokenize('table aliases /etc/aliases', { file: 'f' });
    expect(tokens.map((t) => t.text)).toEqual(['table', 'aliases', '/etc/aliases']);
    expect(errors.map(String)).toEqual([
      'f:1:15: "/etc/aliases" must be quoted\n    hint: an argument that starts with "/" must be written in double quotes: "/etc/aliases"',
    ]);
  });

  it('reports an unterminated string at its opening quote, and stops it at the end of the line', () => {
    const { tokens, errors } = tokenize('mda "x\nnext', { file: 'f' });
    expect(errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual(['1:5 unterminated quoted string']);
    expect(tokens.map((t) => t.kind)).toEqual(['word', 'error', 'newline', 'word']);
  });

  it('reports a backslash that does not end its line', () => {
    const { errors } = tokenize('listen on lo \\  \nmatch', { file: 'f' });
    expect(errors[0]?.message).toBe('a backslash outside quotes must be the last character of its line');
    expect(errors[0]?.hint).toBe('remove the spaces after the \\ to continue the line');
  });

  it('reports an undefined macro with the closest defined name', () => {
    const { errors } = tokenize('listen on $lan_adr', { file: 'f', macros: { lan_addr: '10.0.0.1' } });
    expect(errors.map(String)).toEqual(['f:1:11: macro "lan_adr" is not defined\n    hint: did you mean $lan_addr?']);
  });

  it('handles CRLF line ends', () => {
    expect(kinds('listen on lo\r\nmatch \\\r\n for')).toEqual([
      'word:listen', 'word:on', 'word:lo', 'newline:\n', 'word:match', 'word:for',
    ]);
  });
});
