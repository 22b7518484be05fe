export { Store } from './store.js';
export { type JournalEntry } from './journal.js';
export { readListsFile, loadListsFile } from './lists-file.js';
export { CURRENT_STORE_SCHEMA } from './schema.js';
