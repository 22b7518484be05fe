import { spawn } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * What signs the ESIA `client_secret` (a detached signature over client_id + scope + timestamp + state + redirect_uri,
 * see esia.ts). In production ESIA wants GOST R 34.10-2012 with the system's registered certificate, which node:crypto
 * does not do: the external-command signer runs whatever the operator installed (CryptoPro's cryptcp, openssl with the
 * gost engine) with the data on stdin and the signature on stdout. The key-file signer (RSA, ECDSA, Ed25519 PEM) serves
 * tests, stand-ins and any provider that accepts those algorithms.
 */
export interface Signer {
  sign(data: Buffer): Promise<Buffer>;
}

/** A PEM private key (RSA: RSASSA-PKCS1-v1_5 with SHA-256; ECDSA: SHA-256, DER signature; Ed25519: pure). */
export function keyFileSigner(pemOrPath: string): Signer {
  let key: KeyObject;
  try {
    key = createPrivateKey(pemOrPath.includes('-----BEGIN') ? pemOrPath : readFileSync(pemOrPath, 'utf8'));
  } catch (e) {
    throw new RcError(ErrorCode.CabinetProviderConfig, 'the signing key is not a readable PEM private key', { cause: (e as Error).message });
  }
  const alg = key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
  return { sign: async (data) => cryptoSign(alg, data, key) };
}

/**
 * An external command: `argv[0]` run with `argv[1..]` (no shell), the data on stdin, the signature on stdout (raw bytes,
 * or base64 when `base64` is set). A non-zero exit, empty output or a timeout is cabinet.signer-failed (with the exit code
 * and the first line of stderr, never the data).
 */
export function commandSigner(argv: readonly string[], o: { timeoutMs?: number; base64?: boolean } = {}): Signer {
  if (argv.length === 0) throw new RcError(ErrorCode.CabinetProviderConfig, 'the signing command is empty');
  return {
    sign: (data) =>
      new Promise<Buffer>((resolve, reject) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 10_000);
        const fail = (why: string, ctx: Record<string, unknown> = {}) =>
          reject(new RcError(ErrorCode.CabinetSignerFailed, `the signing command failed: ${why}`, { command: argv[0], ...ctx }));
        child.stdout.on('data', (b: Buffer) => out.push(b));
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.on('error', (e) => {
          clearTimeout(timer);
          fail(e.message);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const stderr = Buffer.concat(err).toString('utf8').split('\n')[0]?.slice(0, 200) ?? '';
          if (code !== 0) return fail(signal ? `killed (${signal})` : `exit ${code}`, { exit: code, stderr });
          const raw = Buffer.concat(out);
          const sig = o.base64 ? Buffer.from(raw.toString('ascii').trim(), 'base64') : raw;
          if (sig.length === 0) return fail('no signature on stdout');
          resolve(sig);
        });
        child.stdin.on('error', () => undefined);
        child.stdin.end(data);
      }),
  };
}
