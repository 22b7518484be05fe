export { Store, type JournalEntry } from './store.js';
export { processTap, currentBootId } from './tap.js';
export { readListsFile, loadListsFile } from './lists-file.js';
export { CURRENT_STORE_SCHEMA } from './schema.js';
