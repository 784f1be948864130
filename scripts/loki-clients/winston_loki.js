// Ships N lines through winston-loki (npm), a real Loki client that pushes
// snappy-compressed protobuf by default. Usage: node winston_loki.js HOST N TAG
// (HOST without the push path; the client appends /loki/api/v1/push).
// Exits 1 if the protobuf path is not taken or a push failed.
const winston = require('winston');
const LokiTransport = require('winston-loki');

// winston-loki falls back to JSON when snappy cannot load; this run is for protobuf.
require('snappy');

const [host, n, tag] = process.argv.slice(2);
let failure = null;
const transport = new LokiTransport({
  host,
  labels: { app: 'winston-loki' },
  format: winston.format.printf((info) => info.message),
  interval: 0.2,
  onConnectionError: (err) => { failure = err; },
});
const logger = winston.createLogger({ transports: [transport] });
for (let i = 0; i < Number(n); i++) {
  logger.info(`${tag} line ${i} "quoted" ünïcode`);
}
transport.close().then(() => {
  if (failure) {
    console.error(`push failed: ${failure}`);
    process.exit(1);
  }
});
