import { randomBytes } from 'node:crypto';

/**
 * bcrypt (`$2b$`), for the NATS cluster's user file (sync-server/nats-auth.ts): NATS accepts plain or bcrypt
 * passwords only, and no bcrypt package is installed (Node's crypto has no Blowfish key schedule). This is the
 * OpenBSD algorithm (Provos & Mazières 1999): EksBlowfishSetup with the salt and the password (its UTF-8 bytes
 * and a NUL, at most 72 bytes), 2^cost rounds, then "OrpheanBeholderScryDoubt" encrypted 64 times.
 * Blowfish's initial P-array and S-boxes are the hex digits of π; they are computed once, on first use, instead of
 * being pasted in as 1,042 constants (checked against the known first and last words and the OpenBSD test vectors,
 * test/unit/nats-auth.test.ts, and against nats-server itself in test/integration/cluster-nats-users.test.ts).
 */

const B64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** The first `words` 32-bit words of π's fractional part (Machin's formula in fixed point). */
function piWords(words: number): Uint32Array {
  const bits = BigInt(words * 32 + 64);
  const one = 1n << bits;
  const atanInv = (x: bigint): bigint => {
    let sum = 0n;
    let term = one / x;
    const x2 = x * x;
    for (let k = 0n; term !== 0n; k++) {
      sum += (k % 2n === 0n ? 1n : -1n) * (term / (2n * k + 1n));
      term /= x2;
    }
    return sum;
  };
  const pi = 16n * atanInv(5n) - 4n * atanInv(239n);
  let frac = (pi - 3n * one) >> 64n; // the top words*32 bits of the fraction
  const out = new Uint32Array(words);
  for (let i = words - 1; i >= 0; i--) {
    out[i] = Number(frac & 0xffffffffn);
    frac >>= 32n;
  }
  return out;
}

let tables: Uint32Array | null = null;
/** P (18 words) followed by the four S-boxes (4 × 256 words). */
export function blowfishInit(): Uint32Array {
  tables ??= piWords(18 + 1024);
  return tables;
}

class Eks {
  readonly P: Uint32Array;
  readonly S: Uint32Array;
  constructor() {
    const t = blowfishInit();
    this.P = t.slice(0, 18);
    this.S = t.slice(18);
  }

  /** Encrypt lr[i], lr[i+1] in place. */
  enc(lr: Uint32Array, i: number): void {
    const P = this.P;
    const S = this.S;
    let l = lr[i]!;
    let r = lr[i + 1]!;
    l ^= P[0]!;
    for (let k = 1; k <= 16; k += 2) {
      r ^= ((((S[l >>> 24]! + S[256 | ((l >>> 16) & 0xff)]!) | 0) ^ S[512 | ((l >>> 8) & 0xff)]!) + S[768 | (l & 0xff)]!) ^ P[k]!;
      l ^= ((((S[r >>> 24]! + S[256 | ((r >>> 16) & 0xff)]!) | 0) ^ S[512 | ((r >>> 8) & 0xff)]!) + S[768 | (r & 0xff)]!) ^ P[k + 1]!;
    }
    lr[i] = r ^ P[17]!;
    lr[i + 1] = l;
  }

  /** ExpandKey(state, salt, key); salt null: the zero salt of the 2^cost loop. */
  expand(key: Uint8Array, salt: Uint8Array | null): void {
    let kp = 0;
    const keyWord = (): number => {
      let w = 0;
      for (let j = 0; j < 4; j++) {
        w = (w << 8) | key[kp]!;
        kp = (kp + 1) % key.length;
      }
      return w;
    };
    let sp = 0;
    const saltWord = (): number => {
      if (!salt) return 0;
      let w = 0;
      for (let j = 0; j < 4; j++) {
        w = (w << 8) | salt[sp]!;
        sp = (sp + 1) % salt.length;
      }
      return w;
    };
    for (let i = 0; i < 18; i++) this.P[i] = this.P[i]! ^ keyWord();
    const lr = new Uint32Array(2);
    for (let i = 0; i < 18; i += 2) {
      lr[0] = lr[0]! ^ saltWord();
      lr[1] = lr[1]! ^ saltWord();
      this.enc(lr, 0);
      this.P[i] = lr[0]!;
      this.P[i + 1] = lr[1]!;
    }
    for (let i = 0; i < 1024; i += 2) {
      lr[0] = lr[0]! ^ saltWord();
      lr[1] = lr[1]! ^ saltWord();
      this.enc(lr, 0);
      this.S[i] = lr[0]!;
      this.S[i + 1] = lr[1]!;
    }
  }
}

function encode(b: Uint8Array, len: number): string {
  let out = '';
  let i = 0;
  while (i < len) {
    let c1 = b[i++]!;
    out += B64[(c1 >> 2) & 0x3f];
    c1 = (c1 & 0x03) << 4;
    if (i >= len) {
      out += B64[c1];
      break;
    }
    let c2 = b[i++]!;
    out += B64[c1 | ((c2 >> 4) & 0x0f)];
    c2 = (c2 & 0x0f) << 2;
    if (i >= len) {
      out += B64[c2];
      break;
    }
    const c3 = b[i++]!;
    out += B64[c2 | ((c3 >> 6) & 0x03)];
    out += B64[c3 & 0x3f];
  }
  return out;
}

function decode(s: string, len: number): Uint8Array {
  const v = [...s].map((c) => B64.indexOf(c));
  if (v.some((x) => x < 0)) throw new Error('bcrypt: salt is not in the bcrypt alphabet');
  const out: number[] = [];
  for (let i = 0; out.length < len && i + 1 < v.length; i += 4) {
    out.push(((v[i]! << 2) | (v[i + 1]! >> 4)) & 0xff);
    if (out.length >= len || i + 2 >= v.length) break;
    out.push(((v[i + 1]! << 4) | (v[i + 2]! >> 2)) & 0xff);
    if (out.length >= len || i + 3 >= v.length) break;
    out.push(((v[i + 2]! << 6) | v[i + 3]!) & 0xff);
  }
  return Uint8Array.from(out);
}

const MAGIC = 'OrpheanBeholderScryDoubt';

/** bcrypt of `password` with a 22-character salt in bcrypt's base64 (the `$2b$NN$` setting string form: use bcryptHash). */
export function bcryptRaw(password: string, cost: number, salt22: string, minor: 'a' | 'b' = 'b'): string {
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new Error(`bcrypt: cost ${cost} out of 4..31`);
  const salt = decode(salt22, 16);
  if (salt.length !== 16) throw new Error('bcrypt: the salt must be 22 characters');
  const pw = Buffer.from(password, 'utf8');
  const key = new Uint8Array(Math.min(pw.length + 1, 72));
  key.set(pw.subarray(0, key.length)); // a shorter password keeps its terminating NUL (the array's last zero)
  const st = new Eks();
  st.expand(key, salt);
  for (let i = 0, n = 2 ** cost; i < n; i++) {
    st.expand(key, null);
    st.expand(salt, null);
  }
  const c = new Uint32Array(6);
  for (let i = 0; i < 6; i++) c[i] = Buffer.from(MAGIC, 'latin1').readUInt32BE(i * 4);
  for (let i = 0; i < 64; i++) for (let j = 0; j < 6; j += 2) st.enc(c, j);
  const out = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) out.writeUInt32BE(c[i]!, i * 4);
  const saltOut = encode(salt, 16);
  return `$2${minor}$${String(cost).padStart(2, '0')}$${saltOut}${encode(out, 23)}`;
}

/** Default cost: NATS checks the hash on every connection, so each reconnect costs the node this much CPU (docs/cluster.md). */
export const BCRYPT_COST = 10;

/** A fresh `$2b$` hash of `password` (random 16-byte salt). */
export function bcryptHash(password: string, cost = BCRYPT_COST): string {
  return bcryptRaw(password, cost, encode(randomBytes(16), 16));
}

/** Does `password` match the `$2a$`/`$2b$`/`$2y$` hash? */
export function bcryptVerify(password: string, hash: string): boolean {
  const m = /^\$2([aby])\$(\d\d)\$([./A-Za-z0-9]{22})[./A-Za-z0-9]{31}$/.exec(hash);
  if (!m) return false;
  const again = bcryptRaw(password, Number(m[2]), m[3]!, m[1] === 'a' ? 'a' : 'b');
  return again.slice(4) === hash.slice(4);
}
