/**
 * Lower-cases ASCII letters only, as C's tolower() does in the "C" locale
 * that smtpd runs in. String.prototype.toLowerCase would also fold other
 * letters (and can change a string's length), so a key could match here
 * and not in OpenSMTPD, or the other way round.
 */
export function asciiLowercase(text: string): string {
  return text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}
