// sharp-server.js - the sharp/libvips reference of bench/run: a minimal
// image server as people write it. Every request fetches the original from
// the same S3 origin imgsvc uses (path-style, kept-alive connections, no
// signing: the bench origin ignores it), resizes it with sharp to ?w=
// (default 400) px wide, JPEG quality 82, and responds. One Node process;
// sharp/libvips runs the work on its own thread pool (its defaults).
//
// Usage: node sharp-server.js PORT ORIGIN_URL BUCKET PREFIX
//   e.g. node sharp-server.js 8081 http://127.0.0.1:9000 imgsvc-bench original-images/
'use strict';

const http = require('http');
const sharp = require('sharp');

const [port, origin, bucket, prefix] = process.argv.slice(2);
if (!port || !origin || !bucket) {
  console.error('usage: node sharp-server.js PORT ORIGIN_URL BUCKET [PREFIX]');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const base = `${origin}/${bucket}/${prefix || ''}`;

function fail(res, status, message) {
  const body = JSON.stringify({ message });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const w = parseInt(url.searchParams.get('w') || '400', 10);
  if (!(w >= 1 && w <= 4000)) return fail(res, 400, "Parameter 'w' must be a whole number from 1 to 4000");
  http.get(base + url.pathname.replace(/^\//, ''), { agent }, (up) => {
    if (up.statusCode !== 200) {
      up.resume();
      return fail(res, up.statusCode === 404 ? 404 : 502, 'origin status ' + up.statusCode);
    }
    const chunks = [];
    up.on('data', (c) => chunks.push(c));
    up.on('end', () => {
      sharp(Buffer.concat(chunks))
        .resize({ width: w, withoutEnlargement: true })
        .jpeg({ quality: 82 })
        .toBuffer()
        .then((out) => {
          res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': out.length });
          res.end(out);
        }, (err) => fail(res, 415, String(err.message || err)));
    });
    up.on('error', (err) => fail(res, 502, String(err.message || err)));
  }).on('error', (err) => fail(res, 502, String(err.message || err)));
}).listen(Number(port), '127.0.0.1', () => {
  console.log(`sharp-server listening on 127.0.0.1:${port}, origin ${base}, libvips ${sharp.versions.vips}, ` +
    `concurrency ${sharp.concurrency()}`);
});
