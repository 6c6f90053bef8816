// The benchmark's submission peer: a copy of tests/interop/smtp-server.mjs
// (nodemailer's smtp-server, the version pinned in tests/interop), extended
// for bench/run. It is a separate file so that the interop tests' server
// stays exactly what those tests assert against.
//
// Options come as one JSON argument:
//   {"key": PEM path, "cert": PEM path, "host": "0.0.0.0", "port": 587,
//    "user": "bench", "password": "..."}
// Differences from the interop peer, and why:
// - listens on the given host and port, because the benchmark runs it inside
//   a network namespace on the namespace's own addresses;
// - AUTH is mandatory (authOptional false) with one fixed user and password,
//   so both clients do the same STARTTLS + AUTH PLAIN dialogue as a real
//   port-587 submission;
// - the message is counted and thrown away, not kept: the 100 MiB peak-RSS
//   run must not make the server buffer (and base64-encode) 100 MB;
// - no reverse DNS lookup of the client: smtp-server does one per connection
//   by default, and on this offline machine its latency would be noise that
//   lands on both clients' wall time;
// - no 100 ms greeting pause: smtp-server holds every greeting 100 ms to
//   catch "early talkers" (init() in its smtp-connection.js). That is a
//   server policy, not a cost of the client, and would add the same 100 ms
//   to both clients' every run, hiding the difference the benchmark is
//   after; real submission servers (Postfix's submission service) greet at
//   once. {"greetingPause": true} keeps it;
// - it runs until bench/run kills it by pid (SIGTERM), not until the end of
//   stdin.
// It writes one JSON object per line to stdout: {"event":"listening",...}
// first, then one {"event":"connect"} per connection accepted and one
// {"event":"message","bytes":N,...} per message received, so bench/run and
// bench/queue can check that every run really delivered (and bench/queue
// how many connections a queue run made).
import fs from 'node:fs';
import { createRequire } from 'node:module';

// Resolve smtp-server from tests/interop/node_modules (installed by
// `npm ci` there), so the benchmark uses the very version the tests pin.
const require = createRequire(new URL('../tests/interop/package.json', import.meta.url));
const { SMTPServer } = require('smtp-server');
const { SMTPConnection } = require('smtp-server/lib/smtp-connection.js');

const options = JSON.parse(process.argv[2] ?? '{}');
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

// Greet at once (see above). Patch only the init() this was written
// against, so that a new smtp-server version cannot silently change what
// the benchmark measures: then the pause stays and bench/run says so.
let greetingPause = true;
if (options.greetingPause !== true) {
  const init = SMTPConnection.prototype.init;
  if (/setTimeout\(\(\) => this\.connectionReady\(\), 100\)/.test(init.toString())) {
    SMTPConnection.prototype.init = function () {
      // The original also checks maxClients, which this server does not set.
      this._setListeners(() => this.connectionReady());
    };
    greetingPause = false;
  }
}

const server = new SMTPServer({
  key: fs.readFileSync(options.key),
  cert: fs.readFileSync(options.cert),
  secure: false,
  authOptional: false,
  authMethods: ['PLAIN', 'LOGIN'],
  disableReverseLookup: true,
  logger: false,
  banner: 'smtp-server bench peer',
  onConnect(session, callback) {
    emit({ event: 'connect' });
    callback();
  },
  onAuth(auth, session, callback) {
    if (auth.username === options.user && auth.password === options.password) {
      callback(null, { user: auth.username });
    } else {
      callback(new Error('Invalid username or password'));
    }
  },
  onData(stream, session, callback) {
    let bytes = 0;
    stream.on('data', (chunk) => {
      bytes += chunk.length;
    });
    stream.on('end', () => {
      emit({
        event: 'message',
        bytes,
        secure: session.secure === true,
        user: session.user ?? null,
        rcpt: session.envelope.rcptTo.map((r) => r.address),
      });
      callback(null, 'Message queued');
    });
  },
});

server.on('error', (err) => emit({ event: 'error', message: String(err && err.message) }));
server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
  const { address, port } = server.server.address();
  emit({ event: 'listening', address, port, greetingPause });
});
// No signal handlers: Node's default action on SIGTERM ends the process at
// once, which is what bench/run's cleanup wants.
