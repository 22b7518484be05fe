import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { serviceDay, type JournalRow, type SettlementOptions } from '../../sync-server/settlement/index.js';

/** Local Moscow time (YYYY-MM-DDTHH:MM:SS) as epoch ms. */
export const msk = (local: string) => Date.parse(`${local}+03:00`);

/**
 * Server journal rows of full-fare bus taps, as settlement reads them (sequence numbers count up per maker):
 * `row(token, device, localTime, route)`, the vehicle named after the device.
 */
export function busRowMaker(o: SettlementOptions): (token: string, device: string, at: string, route: string) => JournalRow {
  let seq = 0;
  return (token, device, at, route) => ({
    device,
    seq: ++seq,
    token,
    kind: 'bus',
    result: 'allow',
    reason: 'full-fare',
    fare: 3500,
    route,
    vehicle: `v-${device}`,
    flags: '[]',
    eff_ms: msk(at),
    service_day: serviceDay(msk(at), o),
    settled_fare: null,
    settled_reason: null,
    settle_code: null,
  });
}

/** A device's journal entry of a full-fare bus tap (35 ₽, no benefit) as it is uploaded; `extra` sets the rest (data, lists, fare). */
export function fullFareEntry(seq: number, token: string, time: string, extra: Partial<WireJournalEntry> = {}): WireJournalEntry {
  return { seq, time, token, kind: 'bus', result: 'allow', reason: 'full-fare', fareKopecks: 3500, benefit: null, lists: {}, ...extra };
}
