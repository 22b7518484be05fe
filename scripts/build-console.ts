import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { build } from 'esbuild';

const WEB_TARGET = ['es2022', 'chrome110', 'firefox110', 'safari16'];
const root = join(import.meta.dirname, '..');
/** The header's dark blue (web-common/base.css --head): the colour of the browser bar on a phone. */
const HEADER_BLUE = '#17324f';

/** One browser entry bundled as `name`.js (+ its CSS) into `outDir`: self-contained, minified, no source maps (console, cabinet, portal). */
async function bundle(src: string, entry: string, name: string, outDir: string): Promise<void> {
  await build({
    entryPoints: { [name]: join(src, entry) },
    outdir: outDir,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: WEB_TARGET,
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

/** What one app's page says in its <head> beyond the shared lines (sync-server/web-common/index.html). */
interface Shell {
  title: string;
  /** The viewport's extra settings (the cabinet's `viewport-fit=cover` for a phone's notch). */
  viewport?: string;
  /** The browser bar's colour on a phone: the header's dark blue. */
  themeColor?: string;
  /** The PWA's manifest (cabinet). */
  manifest?: string;
  /** The app icon; `appleTouch` also for iOS's home screen. */
  icon?: { href: string; appleTouch: boolean };
}

const HEAD_INDENT = '    ';

/**
 * The page of one app (console, cabinet, portal) from the one template, sync-server/web-common/index.html (found
 * beside the app's folder `src`, as its style.css finds base.css: tsup runs this file from elsewhere): the shell
 * that loads app.css and app.js into an empty #app, with this app's title and head lines in its slots.
 */
export function shellHtml(src: string, app: Shell): string {
  const head = [
    app.themeColor ? `<meta name="theme-color" content="${app.themeColor}" />` : null,
    `<title>${app.title}</title>`,
    app.manifest ? `<link rel="manifest" href="${app.manifest}" />` : null,
    app.icon ? `<link rel="icon" href="${app.icon.href}" type="image/png" />` : null,
    app.icon?.appleTouch ? `<link rel="apple-touch-icon" href="${app.icon.href}" />` : null,
  ].filter((l) => l !== null);
  return readFileSync(join(src, '..', '..', 'web-common', 'index.html'), 'utf8')
    .replace('{{viewport}}', app.viewport ? `, ${app.viewport}` : '')
    .replace(`${HEAD_INDENT}{{head}}\n`, head.map((l) => `${HEAD_INDENT}${l}\n`).join(''));
}

/**
 * The operator console's bundle (issue 12): sync-server/console/web/main.ts and its CSS, bundled by esbuild
 * into `outDir` (dist/console/ by `npm run build`) as app.js + app.css + index.html. Everything is in the
 * bundle: no CDN, no web fonts, so the console works without internet.
 */
export async function buildConsole(outDir: string, src = join(root, 'sync-server', 'console', 'web')): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await bundle(src, 'main.ts', 'app', outDir);
  writeFileSync(join(outDir, 'index.html'), shellHtml(src, { title: 'Карта жителя — консоль оператора' }));
}

/**
 * The cardholder's cabinet (issue 15, a PWA) into `outDir` (dist/cabinet/): app.js + app.css + index.html, the
 * service worker sw.js, the web app manifest and its two icons (PNGs drawn here, no image tools needed).
 */
export async function buildCabinet(outDir: string, src = join(root, 'sync-server', 'cabinet', 'web')): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await bundle(src, 'main.ts', 'app', outDir);
  await bundle(src, 'sw.ts', 'sw', outDir);
  writeFileSync(
    join(outDir, 'index.html'),
    shellHtml(src, {
      title: 'Карта жителя — личный кабинет',
      viewport: 'viewport-fit=cover',
      themeColor: HEADER_BLUE,
      manifest: 'manifest.webmanifest',
      icon: { href: 'icon-192.png', appleTouch: true },
    }),
  );
  copyFileSync(join(src, 'manifest.webmanifest'), join(outDir, 'manifest.webmanifest'));
  for (const size of [192, 512]) writeFileSync(join(outDir, `icon-${size}.png`), iconPng(size));
}

/** The public portal (issue 15 item 4) into `outDir` (dist/portal/): app.js + app.css + index.html and the icon. */
export async function buildPortal(outDir: string, src = join(root, 'sync-server', 'portal', 'web')): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await bundle(src, 'main.ts', 'app', outDir);
  writeFileSync(
    join(outDir, 'index.html'),
    shellHtml(src, { title: 'Карта жителя Республики Калмыкия', themeColor: HEADER_BLUE, icon: { href: 'icon-192.png', appleTouch: false } }),
  );
  writeFileSync(join(outDir, 'icon-192.png'), iconPng(192));
}

/** The cabinet and the portal beside the console in `distDir` (npm run build: dist/cabinet/, dist/portal/). */
export async function buildPublicWeb(distDir: string): Promise<void> {
  await buildCabinet(join(distDir, 'cabinet'));
  await buildPortal(join(distDir, 'portal'));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * The app icon: a bank card (blue, a white stripe and a chip) on the header's dark blue, full bleed so a
 * maskable crop keeps the card whole. An RGBA PNG written with zlib.
 */
export function iconPng(size: number): Buffer {
  const px = Buffer.alloc(size * size * 4);
  const set = (x: number, y: number, [r, g, b]: readonly number[]) => {
    const i = (y * size + x) * 4;
    px[i] = r!;
    px[i + 1] = g!;
    px[i + 2] = b!;
    px[i + 3] = 255;
  };
  const BG = [0x17, 0x32, 0x4f];
  const CARD = [0x2f, 0x6f, 0xb3];
  const STRIPE = [0xff, 0xff, 0xff];
  const CHIP = [0xe8, 0xc5, 0x6a];
  const s = (f: number) => Math.round(f * size);
  const cx0 = s(0.2);
  const cx1 = s(0.8);
  const cy0 = s(0.31);
  const cy1 = s(0.69);
  const rad = s(0.05);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let c = BG;
      const inX = x >= cx0 && x < cx1;
      const inY = y >= cy0 && y < cy1;
      if (inX && inY) {
        const dx = Math.max(cx0 + rad - x, x - (cx1 - 1 - rad), 0);
        const dy = Math.max(cy0 + rad - y, y - (cy1 - 1 - rad), 0);
        if (dx * dx + dy * dy <= rad * rad) {
          c = CARD;
          if (y >= s(0.56) && y < s(0.6) && x >= s(0.27) && x < s(0.73)) c = STRIPE;
          if (y >= s(0.38) && y < s(0.48) && x >= s(0.27) && x < s(0.37)) c = CHIP;
        }
      }
      set(x, y, c);
    }
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) px.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
