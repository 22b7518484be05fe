export { Settlement, settleCard, replayCard, publishedTariff, type JournalRow, type SettledTap, type SettleReport } from './engine.js';
export { DEFAULT_SETTLEMENT, serviceDay, settlementOptions, type SettlementOptions } from './days.js';
export { queryAdjustments, queryCharges, queryJournal, type AdjustmentView, type ChargeView, type JournalQuery, type JournalView } from './queries.js';
export { fleetUsage, type CardUsage } from './usage.js';
