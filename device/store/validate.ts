import { ErrorCode, RcError } from '../../protocol/errors.js';
import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { ScopeName, entrySchemaFor, type AnyEntry } from '../../protocol/lists.js';

/** Checks on what callers hand the store, before anything is written. Tokens are stored as 16-byte BLOBs. */

const TOKEN_RE = /^[0-9a-f]{32}$/;

export const tokenBlob = (hex: string): Buffer => Buffer.from(hex, 'hex');

export function checkToken(token: string): Buffer {
  if (!TOKEN_RE.test(token)) throw new RcError(ErrorCode.InputInvalid, 'token must be 32 lower-case hex digits', { length: token.length });
  return tokenBlob(token);
}

export function checkScope(scope: unknown): string {
  const r = ScopeName.safeParse(scope);
  if (!r.success) throw new RcError(ErrorCode.ListUnknownScope, `unknown list scope "${String(scope).slice(0, 64)}"`, { scope: String(scope).slice(0, 64) });
  return r.data;
}

export function checkVersion(v: unknown, what: string, scope: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new RcError(ErrorCode.ListInvalid, `${scope}: ${what} must be a positive integer`, { scope, [what]: String(v) });
  }
  return v;
}

/** Path (within the entry) of the first benefit whose category `cats` does not define, or null. */
export function unknownCategory(e: AnyEntry, cats: CategoryTable): { path: (string | number)[]; category: string } | null {
  if (!('benefits' in e)) return null;
  for (let j = 0; j < e.benefits.length; j++) {
    const c = e.benefits[j]!.category;
    if (cats.toWire(c) === undefined) return { path: ['benefits', j, 'category'], category: c };
  }
  return null;
}

/**
 * Validate entries of a scope with the protocol schemas, and benefit categories
 * against those the device's rules define (`cats`); throw store.list-invalid
 * naming the first bad entry (index, token prefix, field path, message).
 */
export function validateEntries(scope: string, entries: readonly unknown[], label = 'entries', cats: CategoryTable = DEVICE_BUILT_IN_TABLE): AnyEntry[] {
  const schema = entrySchemaFor(scope);
  const out: AnyEntry[] = new Array<AnyEntry>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const r = schema.safeParse(entries[i]);
    if (!r.success) {
      const iss = r.error.issues[0];
      const path = [label, i, ...(iss?.path ?? [])].map(String).join('.');
      throw new RcError(ErrorCode.ListInvalid, `${scope}: ${path}: ${iss?.message ?? 'invalid'}; nothing applied`, { scope, index: i, path });
    }
    const u = unknownCategory(r.data, cats);
    if (u) {
      const path = [label, i, ...u.path].map(String).join('.');
      throw new RcError(ErrorCode.ListInvalid, `${scope}: ${path}: category ${u.category} is not defined in the rules held; nothing applied`, {
        scope,
        index: i,
        path,
      });
    }
    out[i] = r.data;
  }
  return out;
}
