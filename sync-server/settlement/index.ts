export { Settlement, type JournalRow } from './engine.js';
export { serviceDay, settlementOptions, type SettlementOptions } from './days.js';
export { queryAdjustments, queryCharges, queryJournal } from './queries.js';
export { fleetUsage, usageCards } from './usage.js';
