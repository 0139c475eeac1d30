import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type FileAccess, parseConfig } from '../../src/config/index.ts';
import { encodeTableDb } from '../../src/table/db-writer.ts';
import { CORPUS } from './corpus-files.ts';
import { parseErrors, parseOk, RULE } from './helpers.ts';

/** Each error as `line:col message | hint`. */
const brief = (text: string) => parseErrors(text).map((e) => `${e.line}:${e.col} ${e.message}${e.hint ? ` | ${e.hint}` : ''}`);

describe('a relay that logs in needs TLS', () => {
  const relay = (options: string) => `table s { bob = "bob:pw" }\naction "r" relay ${options}\nmatch for any action "r"`;

  it('accepts smtp+tls://, smtps://, and smtp:// with the tls option', () => {
    for (const options of ['host smtp+tls://bob@mx.example.com auth <s>', 'host smtps://bob@mx.example.com auth <s>',
      'host smtp://bob@mx.example.com tls auth <s>', 'host bob@mx.example.com auth <s> tls no-verify']) {
      parseOk(relay(options));
    }
  });

  it('refuses a host that only tries STARTTLS, or never uses TLS, and says how to fix it', () => {
    expect(brief(relay('host smtp://bob@mx.example.com auth <s>'))).toEqual([
      '2:49 "auth" sends a password, but smtp:// does not require TLS | write the host as smtp+tls://label@host (STARTTLS) or smtps://label@host, or add the option tls',
    ]);
    expect(brief(relay('host mx.example.com auth <s>'))[0]).toMatch(/^2:38 "auth" sends a password, but a relay host without a protocol does not require TLS/);
    expect(brief(relay('host smtp+notls://bob@mx.example.com auth <s>'))).toEqual([
      '2:55 "auth" sends a password, but smtp+notls:// does not require TLS | write the host as smtp+tls:// or smtps:// instead of smtp+notls://',
    ]);
  });

  it('refuses tls with a protocol that has none', () => {
    expect(brief(relay('host smtp+notls://mx.example.com tls'))).toEqual([
      '2:51 "tls" contradicts the relay host\'s protocol smtp+notls:// | remove tls, or write the host as smtp+tls://',
    ]);
  });
});

describe('files named by the configuration', () => {
  const pem = (name: string) => readFileSync(join(CORPUS, 'pki', name));
  /** A disk with the corpus certificates at /ssl, and files with the given modes and owners. */
  const disk = (files: Record<string, { data: Buffer | string; mode?: number; uid?: number }>): FileAccess => ({
    read: (path) => {
      const f = files[path];
      if (!f) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return Buffer.from(f.data);
    },
    stat: (path) => ({ mode: files[path]?.mode ?? 0o100600, uid: files[path]?.uid ?? 0 }),
    uid: 1000,
  });
  const ssl = {
    '/ssl/rsa.crt': { data: pem('rsa.crt'), mode: 0o100644 },
    '/ssl/rsa.key': { data: pem('rsa.key') },
    '/ssl/ecdsa.key': { data: pem('ecdsa.key') },
    '/ssl/ca.crt': { data: pem('ca.crt') },
  };
  const check = (text: string, files: FileAccess = disk(ssl)) =>
    parseConfig(text + RULE, { file: 'smtpd.conf', checkFiles: files }).errors.map((e) => `${e.line}:${e.col} ${e.message} | ${e.hint}`);

  it('accepts a pki whose files are readable and belong together, and a readable ca', () => {
    expect(check('pki mail cert "/ssl/rsa.crt"\npki mail key "/ssl/rsa.key"\nca c cert "/ssl/ca.crt"')).toEqual([]);
  });

  it('reports a certificate or key that cannot be read, at the file name', () => {
    expect(check('pki mail cert "/ssl/none.crt" key "/ssl/rsa.key"')).toEqual([
      '1:15 cannot read the certificate of pki mail "/ssl/none.crt": no such file | check the path, and that the file exists and is readable by root',
    ]);
    expect(check('pki mail cert "/ssl/rsa.crt"\npki mail key "/ssl/none.key"')).toEqual([
      '2:14 cannot read the key of pki mail "/ssl/none.key": no such file | check the path, and that the file exists and is readable by root',
    ]);
    expect(check('ca c cert "/ssl/none.crt"')[0]).toMatch(/^1:11 cannot read the certificate of ca c/);
  });

  it('refuses a key that others may read or that another user owns; root or the checking user may own it', () => {
    const open = disk({ ...ssl, '/ssl/rsa.key': { data: pem('rsa.key'), mode: 0o100644 } });
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/rsa.key"', open)).toEqual([
      '1:34 the key "/ssl/rsa.key" is open to others (mode 644) | a key may be readable by its group at most: chmod 600 /ssl/rsa.key',
    ]);
    const group = disk({ ...ssl, '/ssl/rsa.key': { data: pem('rsa.key'), mode: 0o100640 } });
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/rsa.key"', group)).toEqual([]);
    const other = disk({ ...ssl, '/ssl/rsa.key': { data: pem('rsa.key'), uid: 33 } });
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/rsa.key"', other)).toEqual([
      '1:34 the key "/ssl/rsa.key" is owned by uid 33, not by root | chown root /ssl/rsa.key',
    ]);
    const mine = disk({ ...ssl, '/ssl/rsa.key': { data: pem('rsa.key'), uid: 1000 } });
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/rsa.key"', mine)).toEqual([]);
  });

  it('refuses files that hold no certificate or no key, and a key of another certificate', () => {
    const files = disk({ ...ssl, '/ssl/text': { data: 'hello\n' } });
    expect(check('pki mail cert "/ssl/text" key "/ssl/rsa.key"', files)[0]).toMatch(/^1:15 "\/ssl\/text" does not hold a certificate/);
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/text"', files)[0]).toMatch(/^1:34 "\/ssl\/text" does not hold a private key/);
    expect(check('pki mail cert "/ssl/rsa.crt" key "/ssl/ecdsa.key"')[0]).toMatch(
      /^1:34 the key "\/ssl\/ecdsa.key" does not belong to the certificate of pki mail/);
  });

  it('reports a table file that cannot be read, but not the backends that run a program', () => {
    expect(check('table a file:/etc/none\ntable b "/etc/none"\ntable c sqlite:/etc/none.conf\ntable d getpwnam')).toEqual([
      '1:9 cannot read the file of table a "/etc/none": no such file | check the path, and that the file exists and is readable by root',
      '2:9 cannot read the file of table b "/etc/none": no such file | check the path, and that the file exists and is readable by root',
    ]);
  });

  it('reads a text table to learn its shape, and checks its uses as for an inline table', () => {
    const files = disk({ '/t/list': { data: 'example.org\n' }, '/t/map': { data: 'root: bob\n' }, '/t/bad': { data: 'a b\nc\n' } });
    const text = 'table l file:/t/list\ntable m "/t/map"\ntable b file:/t/bad\naction "a" mbox alias <l>\nmatch from src <m> reject';
    expect(check(text, files)).toEqual([
      '3:9 table b: /t/bad:2: "c" has no value | a table file is a list (one value per line) or a mapping (key and value on each line), as its first entry decides',
      '4:1 table l is a list, but the alias table must be a mapping | the first entry of /t/list decides: write each line as key value',
      '5:16 table m is a mapping, but the table of "from src" must be a list | the first entry of /t/map decides: write one value per line, with nothing after it',
    ]);
  });

  it('reads a db table\'s header as the server will: a file that is not ours is refused, and its kind gives its shape', () => {
    const berkeley = Buffer.alloc(4096);
    berkeley.writeUInt32LE(0x061561, 12); // what OpenSMTPD's makemap writes: a Berkeley DB hash file
    const files = disk({
      '/t/aliases.db': { data: berkeley },
      '/t/cut.db': { data: encodeTableDb('mapping', [{ key: 'a', value: 'b' }]).subarray(0, 100) },
      '/t/map.db': { data: encodeTableDb('mapping', [{ key: 'root', value: 'bob' }]) },
      '/t/set.db': { data: encodeTableDb('list', [{ key: '10.0.0.0/8' }]) },
    });
    const text = 'table a db:/t/aliases.db\ntable c db:/t/cut.db\ntable m db:/t/map.db\ntable s db:/t/set.db\n' +
      'action "x" mbox alias <m>\nmatch from src <s> for any action "x"\nmatch from src <m> reject';
    expect(check(text, files)).toEqual([
      '1:9 table a: "/t/aliases.db": not a table database made by makemap | build it from its source file with this server\'s ' +
        'makemap (OpenSMTPD\'s makemap writes Berkeley DB files, which this server does not read), e.g. makemap /t/aliases',
      '2:9 table c: "/t/cut.db": database is truncated or corrupt; rebuild it with makemap | build it from its source file with ' +
        'this server\'s makemap (OpenSMTPD\'s makemap writes Berkeley DB files, which this server does not read), e.g. makemap /t/cut',
      '7:16 table m is a mapping, but the table of "from src" must be a list | makemap decided when it built /t/map.db: ' +
        'rebuild it with -t set, from one value per line',
    ]);
  });

  it('compiles a regex table\'s patterns as the server will, and names the line of a bad one', () => {
    const files = disk({ '/t/good': { data: '^root@\n[[:alpha:]]+\\.example$\n' }, '/t/bad': { data: '^ok$\n([\n' } });
    expect(check('table g regex:/t/good\ntable b regex:/t/bad', files)).toEqual([
      '2:9 table b: /t/bad:2: invalid regular expression "([": /([/i: Unterminated character class | ' +
        'each line of a regex table is one POSIX extended regular expression, as grep -E reads them',
    ]);
  });

  it('refuses auth without a table, which names the system\'s passwords, and says what to write instead', () => {
    const pki = 'pki mail cert "/ssl/rsa.crt" key "/ssl/rsa.key"\ntable creds { bob = "hash" }\n';
    const hint = (keyword: string) => `name a credentials table, as in \`${keyword} <creds>\` with \`table creds file:/etc/mail/creds\` ` +
      'holding "user hash" lines, each hash made by `smtpctl encrypt`';
    expect(check(`${pki}listen on lo tls pki mail auth\nlisten on lo port 2525 tls pki mail auth-optional`)).toEqual([
      `3:1 "auth" without a table would check the system's passwords, which this smtpd cannot read | ${hint('auth')}`,
      `4:1 "auth-optional" without a table would check the system's passwords, which this smtpd cannot read | ${hint('auth-optional')}`,
    ]);
    expect(check(`${pki}listen on lo tls pki mail auth <creds>\nlisten on lo port 2525 tls pki mail auth-optional <creds>`)).toEqual([]);
    // OpenSMTPD 6.8 accepts it: the parse alone, which does not ask about the host, does too.
    expect(parseConfig(`${pki}listen on lo tls pki mail auth${RULE}`, { file: 'smtpd.conf' }).errors).toEqual([]);
  });

  it('leaves the disk alone unless asked', () => {
    expect(parseConfig('pki mail cert "/none" key "/none"' + RULE, { file: 'smtpd.conf' }).errors).toEqual([]);
  });
});

describe('maildir followed by forward-file', () => {
  it('reads the option, and warns that OpenSMTPD 6.8 reads a folder', () => {
    const { config, errors, warnings } = parseConfig('action "a" maildir forward-file' + RULE, { file: 'smtpd.conf' });
    expect(errors).toEqual([]);
    expect(config.actions[0]).toMatchObject({ method: { kind: 'maildir', junk: false }, options: { forwardFile: { allowExec: false } } });
    expect(warnings.map(String)).toEqual([
      'smtpd.conf:1:20: warning: "forward-file" right after maildir is read as the option, not as a folder name\n'
      + '    hint: OpenSMTPD 6.8 would deliver to a maildir named "forward-file"; write maildir "~/Maildir" forward-file'
      + ' to keep the option without this warning, or maildir "forward-file" for the folder',
    ]);
  });

  it('does not warn when a path or junk comes first, or when the folder is quoted', () => {
    for (const line of ['maildir "~/Maildir" forward-file', 'maildir junk forward-file', 'maildir "forward-file"']) {
      expect(parseConfig(`action "a" ${line}` + RULE, { file: 'smtpd.conf' })).toMatchObject({ errors: [], warnings: [] });
    }
    expect(parseOk('action "a" maildir "forward-file"' + RULE).actions[0]!.method).toEqual({ kind: 'maildir', path: 'forward-file', junk: false });
  });
});

describe('delays and allow-exec, as OpenSMTPD 6.8 reads them', () => {
  it('wants an srs ttl of a day at least, and no delay past 2^31-1 seconds', () => {
    expect(brief('srs ttl 12h' + RULE)).toEqual([
      '1:9 srs ttl 12h is too short | bounces can take days to come back; use 1d or more (the default is 4d)',
    ]);
    parseOk('srs ttl 24h\nqueue ttl 24855d' + RULE);
    expect(brief('queue ttl 24856d' + RULE)[0]).toMatch(/^1:11 invalid delay for queue ttl: "24856d"/);
  });

  it('takes allow-exec after each expansion it qualifies, but not twice after one', () => {
    const [a] = parseOk('table t { a = b }\naction "a" mbox alias <t> allow-exec forward-file allow-exec' + RULE).actions;
    expect(a!.options).toMatchObject({ alias: { allowExec: true }, forwardFile: { allowExec: true } });
    expect(brief('action "a" mbox forward-file allow-exec allow-exec' + RULE)[0]).toMatch(/^1:41 "allow-exec" must follow/);
  });
});
