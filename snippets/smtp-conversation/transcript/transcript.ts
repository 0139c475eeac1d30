// Start the SMTP engine with an in-memory queue, play one scripted session
// over a raw socket, and print what each side said, then what was queued.
import { createServer, connect, type AddressInfo } from 'node:net';
import { openQueueBackend } from '@saf/impl/queue';
import { createSmtpServer, type Hook } from '@saf/impl/smtp';

// Stands in for the rules: one recipient refused, the others accepted
// for the action "mailboxes". The daemon asks the lookup process here.
const rules: Hook = ({ param }) =>
  param.startsWith('nobody@')
    ? { decision: 'reject', reply: { code: 550, lines: [`Invalid recipient: <${param}>`] } }
    : { decision: 'accept', dispatcher: 'mailboxes' };

const queue = await openQueueBackend('ram');
const log: string[] = [];
const smtp = createSmtpServer({
  hostname: 'mx.example.org',
  queue,
  hooks: { 'rcpt-to': [rules] },
  // Reverse DNS, as the daemon asks it; a fixed answer, so no DNS is needed.
  resolveName: async () => 'localhost',
  logger: { info: (line) => log.push(line), warn: (line) => log.push(line) },
});
const server = createServer();
smtp.listen(server);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
await new Promise((resolve) => client.once('connect', resolve));

// Everything the server sends, cut into whole replies (the last line of a
// reply has a space after the code, the others a '-').
let received = '';
let wake = () => {};
client.setEncoding('latin1').on('data', (text: string) => {
  received += text;
  wake();
});
async function reply(): Promise<void> {
  for (;;) {
    const end = /^\d{3}(?: .*)?\r\n/m.exec(received);
    if (end) {
      const text = received.slice(0, end.index + end[0].length);
      received = received.slice(text.length);
      for (const line of text.trimEnd().split('\r\n')) console.log(`S: ${line}`);
      return;
    }
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

// What the client sends, one write per call. Lines end with CRLF; a bare
// LF is shown as <LF>, at the end of the line it ends.
function send(text: string): void {
  for (const line of text.match(/[^\n]*\n/g) ?? []) {
    console.log(`C: ${line.endsWith('\r\n') ? line.slice(0, -2) : `${line.slice(0, -1)}<LF>`}`);
  }
  client.write(text);
}

await reply();
send('EHLO laptop.example.net\r\n');
await reply();
send('MAIL FROM:<alice@example.net> SIZE=50000000\r\n');
await reply();
send('MAIL FROM:<alice@example.net>\r\n');
await reply();
send('RCPT TO:<bob@example.org>\r\n');
await reply();

console.log('-- three commands in one write (PIPELINING) --');
send('RCPT TO:<nobody@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n');
await reply();
await reply();
await reply();

console.log('-- the message, in one write --');
send([
  'From: Alice <alice@example.net>',
  'To: Bob <bob@example.org>, Carol <carol@example.org>',
  'Subject: Lunch',
  '',
  'Thursday at noon?',
  '..NET meetup after lunch, if you like.', // a dot doubled by the client
  'See you.\n.\nMAIL FROM:<ceo@example.org>', // an attempt to end the message at LF . LF
  'RCPT TO:<carol@example.org>',
  'DATA',
  'Subject: Urgent wire transfer',
  '',
  'Pay the invoice today.',
  '.',
  '',
].join('\r\n'));
await reply();

// The 250 came after the commit: the message is in the queue already.
console.log('-- in the queue --');
const envelopes = [];
for await (const envelope of queue.recover()) envelopes.push(envelope);
for (const { id, recipient, dispatcher } of envelopes) {
  console.log(`envelope ${id.toString(16).padStart(16, '0')}: to <${recipient.user}@${recipient.domain}>, action "${dispatcher}"`);
}
const chunks: Buffer[] = [];
for await (const chunk of await queue.openMessage(envelopes[0]!.messageId)) chunks.push(chunk as Buffer);
const content = Buffer.concat(chunks).toString('latin1');
console.log(`message ${envelopes[0]!.messageId.toString(16).padStart(8, '0')}, as stored:`);
for (const line of content.replace(/\r\n$/, '').split('\r\n')) console.log(`  ${line.replace(/\n/g, '<LF>')}`);

send('QUIT\r\n');
await reply();
await smtp.close();
server.close();

console.log('-- the engine\'s log --');
for (const line of log) console.log(line);
