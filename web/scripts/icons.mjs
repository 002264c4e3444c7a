// Draws the app's PNG icons (public/icon-192.png, icon-512.png, icon-maskable-512.png) from the
// same shapes as public/favicon.svg: a padlock on the accent blue. No dependency: the shapes
// are measured per pixel (4×4 samples) and written with node:zlib. Run: node scripts/icons.mjs
import { writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const BLUE = [0x1f, 0x5f, 0xbf];
const WHITE = [0xff, 0xff, 0xff];

/** Inside the padlock of favicon.svg's 32-unit box (shackle ring above y=13, body below). */
function lock(x, y) {
  const body = x >= 7.5 && x <= 24.5 && y >= 15 && y <= 25;
  const r = Math.hypot(x - 16, y - 13);
  const shackleTop = y <= 13 && r <= 7 && r >= 4;
  const shackleSides = y > 13 && y <= 15 && ((x >= 9 && x <= 12) || (x >= 20 && x <= 23));
  return body || shackleTop || shackleSides;
}

function roundedSquare(x, y, rx) {
  const cx = Math.min(Math.max(x, rx), 32 - rx);
  const cy = Math.min(Math.max(y, rx), 32 - rx);
  return Math.hypot(x - cx, y - cy) <= rx;
}

/** RGBA pixels of a `size` icon; `maskable`: full bleed, the lock inside the safe circle. */
function draw(size, maskable) {
  const px = Buffer.alloc(size * size * 4);
  const S = 4;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      let bg = 0;
      let fg = 0;
      for (let sj = 0; sj < S; sj++) {
        for (let si = 0; si < S; si++) {
          const x = ((i + (si + 0.5) / S) / size) * 32;
          const y = ((j + (sj + 0.5) / S) / size) * 32;
          const inBg = maskable ? true : roundedSquare(x, y, 7);
          if (!inBg) continue;
          bg++;
          // Maskable: the lock at 70 % around the centre stays inside the 80 % safe zone.
          const k = maskable ? 0.7 : 1;
          if (lock(16 + (x - 16) / k, 16 + (y - 16) / k)) fg++;
        }
      }
      const o = (j * size + i) * 4;
      const a = bg / (S * S);
      const f = bg ? fg / bg : 0;
      for (let c = 0; c < 3; c++) px[o + c] = Math.round(BLUE[c] * (1 - f) + WHITE[c] * f);
      px[o + 3] = Math.round(a * 255);
    }
  }
  return px;
}

const CRC = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});
function crc32(buf) {
  let c = -1;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const out = new URL("../public/", import.meta.url);
for (const [name, size, maskable] of [
  ["icon-192.png", 192, false],
  ["icon-512.png", 512, false],
  ["icon-maskable-512.png", 512, true],
]) {
  writeFileSync(new URL(name, out), png(size, draw(size, maskable)));
}
