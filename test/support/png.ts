import { inflateSync } from 'node:zlib';

/**
 * A small PNG reader for tests that check a rendering is not blank: 8-bit
 * greyscale, grey+alpha, RGB and RGBA, not interlaced (what pdftoppm and
 * Chromium write). Returns the share of pixels that are not (near) white.
 */
export function pngInkShare(png: Buffer): { width: number; height: number; ink: number; share: number } {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let p = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (p < png.length) {
    const len = png.readUInt32BE(p);
    const type = png.toString('ascii', p + 4, p + 8);
    const data = png.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      const color = data[9];
      const interlace = data[12];
      if (depth !== 8 || interlace !== 0) throw new Error(`PNG depth ${depth} / interlace ${interlace} not supported`);
      channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[color ?? -1] ?? 0;
      if (channels === 0) throw new Error(`PNG colour type ${color} not supported`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const cur = Buffer.alloc(stride);
  const prev = Buffer.alloc(stride);
  let ink = 0;
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? (cur[i - channels] ?? 0) : 0;
      const b = prev[i] ?? 0;
      const c = i >= channels ? (prev[i - channels] ?? 0) : 0;
      const x = line[i] ?? 0;
      let v: number;
      if (f === 0) v = x;
      else if (f === 1) v = x + a;
      else if (f === 2) v = x + b;
      else if (f === 3) v = x + ((a + b) >> 1);
      else {
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      cur[i] = v & 0xff;
    }
    for (let px = 0; px < width; px++) {
      const o = px * channels;
      const colour = channels >= 3 ? [cur[o], cur[o + 1], cur[o + 2]] : [cur[o]];
      const alpha = channels === 2 || channels === 4 ? (cur[o + channels - 1] ?? 255) : 255;
      if (alpha > 16 && colour.some((c) => (c ?? 255) < 235)) ink++;
    }
    cur.copy(prev);
  }
  return { width, height, ink, share: ink / (width * height) };
}
