// ipx-server.mjs - the ipx reference of bench/run: ipx 3 (what Nuxt Image
// runs) as its own programmatic API serves it, createIPX + ipxHttpStorage +
// createIPXNodeServer on a plain node:http server: no file storage, HTTP
// storage allowed for the origin's host only. A request
//
//   /w_400,q_82,f_jpeg/http://127.0.0.1:ORIGIN_PORT/BUCKET/original-images/photo.jpg
//
// makes ipx fetch the original from the same S3 origin imgsvc uses (a HEAD
// for its metadata, then a GET; ofetch on Node's fetch, which keeps
// connections alive), resize it with sharp and answer a JPEG. One Node
// process, ipx's and sharp's defaults otherwise (ipx encodes progressive
// JPEGs).
//
// Usage: node ipx-server.mjs PORT ORIGIN_URL
import http from 'node:http';
import { createRequire } from 'node:module';
import { createIPX, createIPXNodeServer, ipxHttpStorage } from 'ipx';

const [port, origin] = process.argv.slice(2);
if (!port || !origin) {
  console.error('usage: node ipx-server.mjs PORT ORIGIN_URL');
  process.exit(2);
}
const ipx = createIPX({
  httpStorage: ipxHttpStorage({ domains: [new URL(origin).hostname] }),
});
// The sharp ipx itself loads (its own dependency, maybe not bench/'s).
const sharp = createRequire(import.meta.resolve('ipx'))('sharp');
http.createServer(createIPXNodeServer(ipx)).listen(Number(port), '127.0.0.1', () => {
  console.log(`ipx-server listening on 127.0.0.1:${port}, origin ${origin}, ` +
    `libvips ${sharp.versions.vips} (sharp ${sharp.versions.sharp}), concurrency ${sharp.concurrency()}`);
});
