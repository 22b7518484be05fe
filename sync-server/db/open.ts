import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { openSqliteRegistry, openRegistry } from '../registry.js';
import { migrateSchema, type MigrateResult } from './migrations.js';
import { PgDb, redactUrl } from './pg.js';
import type { Db } from './types.js';

/**
 * Which database the registry lives in, from `--database`:
 *  - absent: SQLite, DATA/registry.sqlite (the default; nothing to install);
 *  - a file path: SQLite in that file;
 *  - postgres://… or postgresql://…: PostgreSQL (docs/postgres.md), through PgDb.
 */
export const DatabaseSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sqlite-dir'), dataDir: z.string().min(1) }),
  z.object({ kind: z.literal('sqlite-file'), file: z.string().min(1) }),
  z.object({
    kind: z.literal('postgres'),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')
      .refine((u) => URL.canParse(u), 'a URL'),
  }),
]);
export type DatabaseSpec = z.infer<typeof DatabaseSpec>;

/** `--database VALUE` (or its absence) and the data dir → the spec, checked; a bad value is db.bad-spec. */
export function parseDatabaseSpec(value: string | undefined, dataDir: string): DatabaseSpec {
  const v = value?.trim();
  const raw = !v ? { kind: 'sqlite-dir', dataDir } : /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? { kind: 'postgres', url: v } : { kind: 'sqlite-file', file: v };
  const r = DatabaseSpec.safeParse(raw);
  if (!r.success) {
    const shown = v && /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? redactUrl(v) : v;
    throw new RcError(
      ErrorCode.DbBadSpec,
      `--database ${shown ?? ''}: neither a SQLite file nor a postgres:// URL (${r.error.issues[0]?.message ?? 'invalid'})`,
      {
        database: shown,
      },
    );
  }
  return r.data;
}

/** A spec as the operator should read it in a log: the file, or the URL without its password. */
export function describeDatabase(spec: DatabaseSpec): string {
  return spec.kind === 'postgres' ? redactUrl(spec.url) : spec.kind === 'sqlite-file' ? spec.file : join(spec.dataDir, 'registry.sqlite');
}

/**
 * The registry's text must compare and sort by bytes, as on SQLite: keyset pages (`token > ?`) and the merges of
 * sorted lists depend on it. A PostgreSQL database made with a language's collation (en_US.UTF-8, ru_RU.UTF-8) is
 * refused with db.collation-not-bytewise before anything is written to it.
 */
function checkBytewise(db: PgDb): void {
  const collation = db.prepare('SELECT datcollate FROM pg_catalog.pg_database WHERE datname = current_database()').pluck().get() as string | undefined;
  if (collation !== 'C' && collation !== 'POSIX')
    throw new RcError(
      ErrorCode.DbCollationNotBytewise,
      `the database's text sorts by the collation ${collation ?? '(unknown)'}, not by bytes: create it with TEMPLATE template0 LC_COLLATE 'C' (docs/postgres.md)`,
      { database: db.name, collation },
    );
}

/** Open the registry the spec names, migrated to the current schema (db/migrations.ts). */
export function openDatabase(spec: DatabaseSpec): { db: Db; migrated?: MigrateResult } {
  switch (spec.kind) {
    case 'sqlite-dir':
      return { db: openRegistry(spec.dataDir) };
    case 'sqlite-file':
      return { db: openSqliteRegistry(spec.file) };
    case 'postgres': {
      const db = new PgDb({ url: spec.url });
      try {
        checkBytewise(db);
        return { db, migrated: migrateSchema(db) };
      } catch (e) {
        db.close();
        throw e;
      }
    }
  }
}
