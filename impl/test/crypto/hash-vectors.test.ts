import { describe, expect, it } from 'vitest';
import { bcrypt, expandKey } from '../../src/crypto/bcrypt.ts';
import { Blowfish, blowfishInitialState } from '../../src/crypto/blowfish.ts';
import { crypt, hashMethod, hashPassword, verifyPassword } from '../../src/crypto/password.ts';
import { pythonCrypt, pythonCryptAll } from './helpers.ts';

/** [password, setting, hash]: the test vectors of Drepper's "Unix crypt using SHA-256 and SHA-512". */
const SPEC_VECTORS: [string, string, string][] = [
  ['Hello world!', '$5$saltstring', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
  ['Hello world!', '$5$rounds=10000$saltstringsaltstring', '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA'],
  ['This is just a test', '$5$rounds=5000$toolongsaltstring', '$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5'],
  ['a very much longer text to encrypt.  This one even stretches over morethan one line.', '$5$rounds=1400$anotherlongsaltstring', '$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1'],
  ['we have a short salt string but not a short password', '$5$rounds=77777$short', '$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/'],
  ['a short string', '$5$rounds=123456$asaltof16chars..', '$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD'],
  ['the minimum number is still observed', '$5$rounds=10$roundstoolow', '$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC'],
  ['Hello world!', '$6$saltstring', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  ['Hello world!', '$6$rounds=10000$saltstringsaltstring', '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.'],
  ['This is just a test', '$6$rounds=5000$toolongsaltstring', '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0'],
  ['a very much longer text to encrypt.  This one even stretches over morethan one line.', '$6$rounds=1400$anotherlongsaltstring', '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1'],
  ['we have a short salt string but not a short password', '$6$rounds=77777$short', '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0'],
  ['a short string', '$6$rounds=123456$asaltof16chars..', '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1'],
  ['the minimum number is still observed', '$6$rounds=10$roundstoolow', '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.'],
];

/** [password, hash]: made with Python 3.11's crypt.crypt() (libxcrypt) on Debian. */
const PYTHON_VECTORS: [string, string][] = [
  ['secret', '$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1'],
  ['', '$6$saltsalt$qkTgsCrWMTAS9gBGcf9W60sFfH.hU0oTCAOJjhbz5tSp/sU3/xXZK4OFwCtq8lIIdpJ6CatVdOTSHKp97TPkt/'],
  ['pässwörd', '$6$rounds=1000$0123456789abcdef$BM6KsY17Dr89XBZfWpg75WyyU6Ur4rlvZRCPQ5qZLPagVa056IuUL0ZGcuhJEt3RWff2RkOWLu.aqpTyioTFt.'],
  ['secret', '$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA'],
  ['secret', '$2b$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW'],
  ['secret', '$2b$10$Ro0CUfOqk6cXEKf3dyaM7OhNG8pOYIsoLJ0VnwYXSY8G3O1daKXgy'],
  ['£ pässwörd ✓', '$2a$05$/OK.fbVrR/bpIqNJ5ianF.rxCbkRaWgGdLX6bSEv8qxHKPp3UBI2u'],
  ['£ pässwörd ✓', '$2y$05$/OK.fbVrR/bpIqNJ5ianF.rxCbkRaWgGdLX6bSEv8qxHKPp3UBI2u'],
  ['x'.repeat(71), '$2b$04$abcdefghijklmnopqrstuu.gc7UY/21CSNJGJg21jJzx9QiOpJ9bO'],
  ['x'.repeat(100), '$2b$04$abcdefghijklmnopqrstuubzadhGtS2zEF.gu0yd0opP6cVzb.e0i'],
];

/** [password, hash]: printed by Debian's OpenSMTPD 6.8.0p2 `smtpctl encrypt`. */
const SMTPCTL_VECTORS: [string, string][] = [
  ['secret', '$6$eW6imMMXsHGcAwU9$LiypElJtf0NmigqGWADNOjwUezPsI1mebm/Z/tu78Jfeu2vRHGGWuUyt4JsKVveBsdFa3qpbnfJ1wCcdvKChP1'],
  ['secret', '$6$Lm3XLYAzXPbFBBNy$nt5Y8XL0xGlhDFwxys6h2ke2/8fwzLtfMLYX0t21PBeQWHq3SfKtIxsgFxDAC2Rx3sRR/6Pis7b.00yjKLhpc.'],
  ['a', '$6$FCjRF75fU/eYqNkv$qjN/VFVa3H9K55xumIEpPCK1N5DPr86YrMeQzzX9SGT48pl9KzWLH0l/ugctk5myMYOinzHH77GDT4QuAqbQL0'],
  ['two words', '$6$k2BjhZ8NoE82XWY8$7neUmv/r7pAhIQ7Z2aZxS2VqirAzlz6XN/jA3KUXpalWXEIRRqnMjPJ20qJpHXjG2kId1EcA8XZyn37Y07epE1'],
  ['-x', '$6$UFUZcJitt5H1xNzI$hiSSSEYzf8FQi3pqg5S4GDvHZhgH5r/sMcD6CuWaKZtHjkf7VPt76HVZ5kHlolYDvjl5auRgIEnE.AtuDISo10'],
  ['', '$6$vBaEPMnt1S7B/o71$7RH0XUe8HyiJj246YYNFURIQeTwhr7m27CtFCuMmV.Du.6P41TidXjjzfmD8YveDuRqWQptAQIoPgl/w46b7W1'],
];

/** [password, hash]: the bcrypt vectors of Openwall's crypt_blowfish, used by OpenBSD's and libxcrypt's tests. */
const BCRYPT_VECTORS: [string | Uint8Array, string][] = [
  ['U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
  ['U*U*', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'],
  ['U*U*U', '$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a'],
  ['0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored', '$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui'],
  ['', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy'],
  [Buffer.from([0xa3]), '$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq'],
  [Buffer.from([0xff, 0xff, 0xa3]), '$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e'],
];

describe('SHA-crypt', () => {
  it.each(SPEC_VECTORS)('hashes the specification vector %j with %s', (password, setting, hash) => {
    expect(crypt(password, setting)).toBe(hash);
    expect(verifyPassword(password, hash)).toBe(true);
  });

  it.each(PYTHON_VECTORS.filter(([, h]) => !h.startsWith('$2')))('matches Python crypt for %j: %s', (password, hash) => {
    expect(crypt(password, hash)).toBe(hash);
  });

  it.each(SMTPCTL_VECTORS)("verifies Debian smtpctl's hash of %j", (password, hash) => {
    expect(verifyPassword(password, hash)).toBe(true);
    expect(verifyPassword(`${password}!`, hash)).toBe(false);
  });

  it.skipIf(!pythonCrypt)('agrees with Python crypt on random passwords, salts and rounds', () => {
    const pairs: [string, string][] = [];
    for (let i = 0; i < 20; i++) {
      const password = Array.from({ length: i * 7 }, (_, j) => String.fromCharCode(32 + ((i * 31 + j * 17) % 95))).join('');
      const salt = hashPassword('x').slice(3, 3 + (i % 16) + 1);
      const id = i % 2 === 0 ? '6' : '5';
      pairs.push([password, i % 3 === 0 ? `$${id}$rounds=${1000 + i}$${salt}$` : `$${id}$${salt}$`]);
    }
    expect(pairs.map(([p, s]) => crypt(p, s))).toEqual(pythonCryptAll(pairs));
  });
});

describe('bcrypt', () => {
  it.each(BCRYPT_VECTORS)('hashes %j to %s', (password, hash) => {
    expect(bcrypt(typeof password === 'string' ? Buffer.from(password) : password, hash)).toBe(hash);
  });

  it.each(PYTHON_VECTORS.filter(([, h]) => h.startsWith('$2')))('matches Python crypt for %j: %s', (password, hash) => {
    expect(verifyPassword(password, hash)).toBe(true);
  });

  it('ignores what follows the 72nd byte', () => {
    const hash = crypt('y'.repeat(72), '$2b$04$abcdefghijklmnopqrstuu')!;
    expect(verifyPassword(`${'y'.repeat(72)}anything`, hash)).toBe(true);
    expect(verifyPassword('y'.repeat(71), hash)).toBe(false);
  });

  it('refuses costs outside 4..31 and malformed salts', () => {
    expect(crypt('x', '$2b$03$abcdefghijklmnopqrstuu')).toBeUndefined();
    expect(crypt('x', '$2b$32$abcdefghijklmnopqrstuu')).toBeUndefined();
    expect(crypt('x', '$2b$04$abcdefghij!lmnopqrstuu')).toBeUndefined();
    expect(crypt('x', '$2x$04$abcdefghijklmnopqrstuu')).toBeUndefined();
  });
});

describe('Blowfish', () => {
  it('starts from the hex digits of π', () => {
    const state = blowfishInitialState();
    expect(state.length).toBe(18 + 1024);
    expect([state[0], state[1], state[17]]).toEqual([0x243f6a88, 0x85a308d3, 0x8979fb1b]);
    expect([state[18], state[18 + 1023]]).toEqual([0xd1310ba6, 0x3ac372e6]);
  });

  // Schneier's published test vectors for Blowfish with its own key schedule.
  it.each([
    ['0000000000000000', '0000000000000000', '4ef997456198dd78'],
    ['ffffffffffffffff', 'ffffffffffffffff', '51866fd5b85ecb8a'],
    ['3000000000000000', '1000000000000001', '7d856f9a613063f2'],
    ['0123456789abcdef', '1111111111111111', '61f9c3802281b096'],
  ])('with key %s encrypts %s to %s', (key, plain, cipher) => {
    const state = new Blowfish();
    expandKey(state, Buffer.from(key, 'hex'));
    const block = new Uint32Array([parseInt(plain.slice(0, 8), 16), parseInt(plain.slice(8), 16)]);
    state.encrypt(block);
    expect([...block].map((w) => w.toString(16).padStart(8, '0')).join('')).toBe(cipher);
  });
});

describe('verifyPassword and hashPassword', () => {
  const hash = PYTHON_VECTORS[0]![1];

  it('refuses a wrong password, an empty or unknown hash', () => {
    expect(verifyPassword('Secret', hash)).toBe(false);
    expect(verifyPassword('', '')).toBe(false);
    expect(verifyPassword('secret', '$1$saltsalt$Wv.qH1jzJ3AKP5Bx.lUN00')).toBe(false);
    expect(verifyPassword('secret', '$6$rounds=x$salt$abc')).toBe(false);
    expect(verifyPassword('secret', `${hash}x`)).toBe(false);
  });

  it('reads a password as crypt(3) does: UTF-8, up to the first NUL', () => {
    expect(verifyPassword('secret\0ignored', hash)).toBe(true);
    expect(verifyPassword(Buffer.from('secret'), hash)).toBe(true);
  });

  it('names the method of a hash', () => {
    expect(['$6$a$b', '$5$a$b', '$2b$10$x', '$2y$10$x', '$1$a$b', '$y$j9T$a$b', 'abQ9KY.KfrYrc'].map(hashMethod)).toEqual([
      'sha512-crypt', 'sha256-crypt', 'bcrypt', 'bcrypt', undefined, undefined, undefined,
    ]);
  });

  it('makes $6$ hashes with 16 random salt characters, as smtpctl encrypt does', () => {
    const [a, b] = [hashPassword('secret'), hashPassword('secret')];
    expect(a).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(a).not.toBe(b);
    expect(verifyPassword('secret', a)).toBe(true);
    expect(hashPassword('secret', { salt: 'saltsalt' })).toBe(hash);
    expect(hashPassword('x', { rounds: 2000 })).toMatch(/^\$6\$rounds=2000\$/);
    expect(() => hashPassword('x', { salt: 'bad$salt' })).toThrow(/salt/);
  });
});
