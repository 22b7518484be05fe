export { Store, type StoreOptions, type StoreSettings } from './store.js';
export { SnapshotWriter, type ApplyResult } from './lists.js';
export { type JournalEntry, type JournalEvent } from './journal.js';
export { validateEntries } from './validate.js';
export { ListsFile, parseListsFile, readListsFile, loadListsFile } from './lists-file.js';
export { CURRENT_STORE_SCHEMA } from './schema.js';
