// reference.js - bench/run's quality reference: the original decoded whole
// (no shrink-on-load), resized with libvips' Lanczos-3 to WIDTH px and
// written as PNG, so the reference itself loses nothing to encoding and
// owes nothing to GraphicsMagick. imgsvc's and the sharp server's 400 px
// JPEGs are each compared with it (PSNR): a faster pipeline that drew
// worse pixels would show here.
//
// Usage: node reference.js ORIGINAL WIDTH OUT.png
'use strict';

const sharp = require('sharp');
const [src, width, out] = process.argv.slice(2);
if (!src || !width || !out) {
  console.error('usage: node reference.js ORIGINAL WIDTH OUT.png');
  process.exit(2);
}
sharp(src, { failOn: 'error' })
  .rotate()
  .resize({ width: Number(width), kernel: 'lanczos3', fastShrinkOnLoad: false })
  .png()
  .toFile(out)
  .then((info) => console.log(`${info.width}x${info.height}`),
    (err) => { console.error(String(err.message || err)); process.exit(1); });
