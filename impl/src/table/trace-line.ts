/**
 * One table lookup as a trace line (`smtpd -T lookup`), worded as
 * OpenSMTPD's table.c words it, so that an operator who knows one can
 * read the other:
 *
 *     lookup: lookup "root" as ALIAS in table file:aliases -> "alice"
 *     lookup: match "example.org" as DOMAIN in table static:domains -> true
 *     lookup: fetch SOURCE from table static:sources -> "192.0.2.1"
 *
 * The answer is the typed one, written back in a table's words. A
 * credentials entry shows the user only: OpenSMTPD prints the password
 * hash, which is not for a log.
 */
import type { LookupTrace } from './table.ts';
import type { AliasTarget, Credentials, SourceAddress, UserInfo } from './types.ts';

export function lookupTraceLine(t: LookupTrace): string {
  const service = t.service.toUpperCase();
  const table = `${t.backend}:${t.table}`;
  const answer = t.error ? `error: ${t.error.message}`
    : t.operation === 'match' ? String(t.result === true)
    : t.result === undefined ? 'none'
    : `"${answerText(t.service, t.result)}"`;
  return t.operation === 'fetch'
    ? `lookup: fetch ${service} from table ${table} -> ${answer}`
    : `lookup: ${t.operation} ${JSON.stringify(t.key ?? '')} as ${service} in table ${table} -> ${answer}`;
}

function answerText(service: LookupTrace['service'], result: unknown): string {
  switch (service) {
    case 'credentials': return `${(result as Credentials).user}:********`;
    case 'alias': return (result as AliasTarget[]).map(aliasText).join(', ');
    case 'userinfo': {
      const u = result as UserInfo;
      return `${u.uid}:${u.gid}:${u.home}`;
    }
    case 'source': return (result as SourceAddress).address;
    default: return typeof result === 'string' ? result : JSON.stringify(result);
  }
}

function aliasText(t: AliasTarget): string {
  switch (t.kind) {
    case 'username': return t.user;
    case 'address': return `${t.user}@${t.domain}`;
    case 'file': return t.path;
    case 'command': return `|${t.command}`;
    case 'include': return `:include:${t.path}`;
    case 'error': return `error:${t.code} ${t.message}`;
  }
}
