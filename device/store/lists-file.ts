import { z } from 'zod';
import { ErrorCode } from '../../protocol/errors.js';
import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import { ScopeName, entrySchemaFor, type ListSnapshot } from '../../protocol/lists.js';
import { invalid, parseJsonText, problemsOf, readTextFile } from '../config/validate.js';
import type { ApplyResult, Store } from './store.js';
import { unknownCategory } from './validate.js';

/**
 * A lists file (`--lists FILE`): whole lists, one per scope, as JSON:
 *   { "lists": [ { "scope": "transit", "version": 3, "entries": [ …TransitEntry ] },
 *                { "scope": "stoplist", "version": 1, "entries": [ …StopEntry ] },
 *                { "scope": "school:7", "version": 2, "entries": [ …SchoolEntry ] } ] }
 * Entry shapes: protocol/lists.ts (docs/config.md). Every entry of every list is
 * validated before anything is applied.
 */
export const ListsFile = z
  .object({
    lists: z.array(
      z
        .object({
          scope: ScopeName,
          version: z.number().int().min(1),
          entries: z.array(z.unknown()),
        })
        .strict(),
    ),
  })
  .strict();

/** Parse and validate a lists file; throws store.list-invalid naming file, line, path and problem. */
export function parseListsFile(text: string, file: string, cats: CategoryTable = DEVICE_BUILT_IN_TABLE): ListSnapshot[] {
  const raw = parseJsonText(text, file, ErrorCode.ListInvalid);
  const top = ListsFile.safeParse(raw);
  if (!top.success) invalid(ErrorCode.ListInvalid, file, problemsOf(top.error, text));
  const seen = new Set<string>();
  return top.data.lists.map((l, li) => {
    if (seen.has(l.scope))
      invalid(
        ErrorCode.ListInvalid,
        file,
        problemsOf(new z.ZodError([{ code: 'custom', path: ['scope'], message: `scope ${l.scope} appears twice`, input: l.scope }]), text, ['lists', li]),
      );
    seen.add(l.scope);
    const schema = entrySchemaFor(l.scope);
    const entries = l.entries.map((e, ei) => {
      const r = schema.safeParse(e);
      if (!r.success) invalid(ErrorCode.ListInvalid, file, problemsOf(r.error, text, ['lists', li, 'entries', ei]));
      const u = unknownCategory(r.data, cats);
      if (u)
        invalid(
          ErrorCode.ListInvalid,
          file,
          problemsOf(
            new z.ZodError([{ code: 'custom', path: u.path, message: `category ${u.category} is not defined in the rules`, input: u.category }]),
            text,
            ['lists', li, 'entries', ei],
          ),
        );
      return r.data;
    });
    return { scope: l.scope as ListSnapshot['scope'], version: l.version, entries };
  });
}

export function readListsFile(file: string, cats?: CategoryTable): ListSnapshot[] {
  return parseListsFile(readTextFile(file, ErrorCode.InputInvalid), file, cats);
}

/** Validate the whole file, then apply each list as a snapshot. */
export function loadListsFile(store: Store, file: string, cats?: CategoryTable): ApplyResult[] {
  const lists = readListsFile(file, cats);
  return lists.map((l) => store.applySnapshot(l));
}
