export { Store, SnapshotWriter, validateEntries, type ApplyResult, type JournalEntry, type JournalEvent, type StoreOptions } from './store.js';
export { processTap, currentBootId } from './tap.js';
export { ListsFile, parseListsFile, readListsFile, loadListsFile } from './lists-file.js';
export { CURRENT_STORE_SCHEMA } from './schema.js';
