import { describe, expect, it } from 'vitest';
import { parseErrors, parseOk, RULE } from './helpers.ts';

describe('macros', () => {
  it('are defined with name = value and used with $name', () => {
    const config = parseOk('lan_addr = "192.168.0.1"\nlisten on $lan_addr\nlisten on $lan_addr tls' + RULE);
    expect(config.listeners.map((l) => l.on)).toEqual([
      { kind: 'interface', name: '192.168.0.1' }, { kind: 'interface', name: '192.168.0.1' },
    ]);
    expect(config.macros).toEqual([{ kind: 'macro', name: 'lan_addr', value: '192.168.0.1', loc: { file: 'smtpd.conf', line: 1, col: 1 } }]);
  });

  it('may hold several words, read as tokens', () => {
    const [l] = parseOk('opts = "port 587 tls-require auth"\nlisten on lo $opts' + RULE).listeners;
    expect(l).toMatchObject({ port: 587, tls: { mode: 'tls-require' }, auth: { required: true } });
  });

  it('accept a bare word as value, and no spaces around =', () => {
    expect(parseOk('x=lo\nlisten on $x' + RULE).listeners[0]!.on).toEqual({ kind: 'interface', name: 'lo' });
  });

  it('are not expanded inside quotes', () => {
    expect(parseOk('x = "a"\ntable t { "$x" }' + RULE).tables[0]!.entries).toEqual({ shape: 'list', values: ['$x'] });
  });

  it('take the latest definition', () => {
    expect(parseOk('x = "a"\nx = "b"\nlisten on $x' + RULE).listeners[0]!.on).toEqual({ kind: 'interface', name: 'b' });
  });

  it('are overridden by -D definitions, even when the file defines them', () => {
    const config = parseOk('lan = "192.168.0.1"\nlisten on $lan' + RULE, { lan: '10.0.0.1' });
    expect(config.listeners[0]!.on).toEqual({ kind: 'interface', name: '10.0.0.1' });
    expect(parseOk('listen on $ext' + RULE, { ext: 'eth0' }).listeners[0]!.on).toEqual({ kind: 'interface', name: 'eth0' });
  });

  it('must be defined before use', () => {
    const errors = parseErrors('listen on $lan\nlan = "10.0.0.1"' + RULE);
    expect(errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual(['1:11 macro "lan" is not defined']);
  });

  it('are not expanded again in a macro value', () => {
    const errors = parseErrors('x = "lo"\ny = "$x"\nlisten on $y' + RULE);
    expect(errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual(['3:11 $x inside the value of macro $y is not expanded']);
  });

  it('cannot be named after a reserved word', () => {
    expect(parseErrors('listen = "lo"' + RULE).map((e) => e.message)).toEqual(['"listen" is a reserved word and cannot name a macro']);
  });

  it('locate errors in their value at the reference', () => {
    const errors = parseErrors('p = "99999"\nlisten on lo port $p' + RULE);
    expect(errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual(['2:19 invalid port: "99999"']);
  });
});
