// A REQUIRETLS-capable submission server built on nodemailer's smtp-server,
// for tlsend's interop tests. Options come as one JSON argument:
//   {"key": PEM path, "cert": PEM path, "hideREQUIRETLS": bool}
// It listens on 127.0.0.1 (a free port) and writes one JSON object per line
// to stdout: {"event":"listening","port":N} first, then one line for every
// MAIL FROM, RCPT TO and message it receives, so the test can assert what
// reached the server and under which protection.
import fs from 'node:fs';
import { SMTPServer } from 'smtp-server';

const options = JSON.parse(process.argv[2] ?? '{}');
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const server = new SMTPServer({
  key: fs.readFileSync(options.key),
  cert: fs.readFileSync(options.cert),
  secure: false,
  hideREQUIRETLS: options.hideREQUIRETLS === true,
  authOptional: true,
  logger: false,
  banner: 'smtp-server interop peer',
  onMailFrom(address, session, callback) {
    emit({
      event: 'mail',
      address: address.address,
      args: address.args || {},
      secure: session.secure === true,
      requireTLS: session.envelope.requireTLS === true,
    });
    callback();
  },
  onRcptTo(address, session, callback) {
    emit({ event: 'rcpt', address: address.address, args: address.args || {}, secure: session.secure === true });
    callback();
  },
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => {
      emit({
        event: 'message',
        secure: session.secure === true,
        requireTLS: session.envelope.requireTLS === true,
        message: Buffer.concat(chunks).toString('base64'),
      });
      callback(null, 'Message queued');
    });
  },
});

server.on('error', (err) => emit({ event: 'error', message: String(err && err.message) }));
server.listen(0, '127.0.0.1', () => emit({ event: 'listening', port: server.server.address().port }));
// The test closes stdin when it is done; exit then so no server outlives it.
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
