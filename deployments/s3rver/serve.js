// s3rver on loopback for helixflow: node serve.js <data dir> <port> [processes]
// Several processes (Node's cluster module) share the port and the data folder, so
// part uploads and ranged downloads are served in parallel. Prints "ready <url>" once
// every process listens; SIGTERM stops them all.
const cluster = require('node:cluster');
const S3rver = require('s3rver');

const [dir, port = '0', processes = '1'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node serve.js <data dir> <port> [processes]');
  process.exit(2);
}
const n = Math.max(1, parseInt(processes, 10));

if (cluster.isPrimary && n > 1) {
  let ready = 0;
  for (let i = 0; i < n; i++) {
    cluster.fork().on('message', (msg) => {
      if (msg && msg.ready && ++ready === n) console.log(`ready ${msg.url}`);
    });
  }
  cluster.on('exit', (worker, code) => {
    if (code) {
      console.error(`s3rver process ${worker.process.pid} exited with ${code}`);
      process.exit(1);
    }
  });
  process.on('SIGTERM', () => {
    for (const id in cluster.workers) cluster.workers[id].kill('SIGTERM');
    process.exit(0);
  });
} else {
  const server = new S3rver({ address: '127.0.0.1', port: parseInt(port, 10), silent: true, directory: dir });
  server.run().then(({ port: bound }) => {
    const url = `http://127.0.0.1:${bound}`;
    if (process.send) process.send({ ready: true, url });
    else console.log(`ready ${url}`);
  }, (err) => {
    console.error(`s3rver failed to start: ${err.message}`);
    process.exit(1);
  });
  process.on('SIGTERM', () => server.close().then(() => process.exit(0), () => process.exit(0)));
}
