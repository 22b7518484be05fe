import { z } from 'zod';

/**
 * The bank connection API (issue 15 item 3, the bank path of 4.1), served on the bank listener
 * (`--bank-listen`, mutual TLS: the bank is identified by its client certificate's SHA-256 fingerprint),
 * and the public list of connected banks. docs/bank-api.md is the banks' guide; docs/openapi-bank.yaml
 * holds only these routes.
 *
 *   POST /v1/bank/connections       Idempotency-Key header; connect (or replace) an applicant's card
 *   GET  /v1/bank/connections/:id   its status: accepted → active (in a published list) → replaced | stopped
 *   GET  /v1/public/banks           the banks that connect cards (no sign-in)
 *
 * A card number (PAN) is accepted in a request body only: it is tokenised on arrival and never stored,
 * logged or answered (answers carry the masked PAN: first 6 and last 4 digits).
 */

export const PersonId = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'person id: 1-64 of A-Z a-z 0-9 _ . -');
/** SNILS: 11 digits, with or without the usual separators (123-456-789 01). */
export const Snils = z.string().regex(/^\d{3}-?\d{3}-?\d{3}[ -]?\d{2}$/, 'SNILS: 11 digits (123-456-789 01)');

export const Applicant = z.union([z.object({ personId: PersonId }).strict(), z.object({ snils: Snils }).strict()]).meta({
  id: 'BankApplicant',
  description: "the person whose card it is: the registry's person id, or their SNILS",
});
export type Applicant = z.infer<typeof Applicant>;

export const ConnectionRequest = z
  .object({
    applicant: Applicant,
    /** The card number as printed (12..19 digits); tokenised on arrival, never kept. */
    pan: z.string().regex(/^\d{12,19}$/, 'card number: 12..19 digits'),
    /** The expiry as printed on the card: MM/YY (also MMYY, MM/YYYY, MM.YY). */
    expiry: z.string().min(4).max(7),
    /** The applicant agreed that this card replaces their current one (without it a person with a card is 409 bank.person-has-card). */
    replace: z.boolean().optional(),
  })
  .strict()
  .meta({ id: 'BankConnectionRequest' });
export type ConnectionRequest = z.infer<typeof ConnectionRequest>;

export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{8,128}$/, 'Idempotency-Key: 8..128 printable ASCII characters');

export const CONNECTION_STATUSES = ['accepted', 'active', 'replaced', 'stopped'] as const;
export const ConnectionStatus = z.enum(CONNECTION_STATUSES).meta({
  description:
    'accepted: registered, not yet in a published list; active: in the published transit list (listVersion: the first version seen with it); replaced: another card of the person replaced it; stopped: the card left the lists (stop-listed or disconnected)',
});
export type ConnectionStatus = z.infer<typeof ConnectionStatus>;

export const Connection = z
  .object({
    id: z.string(),
    status: ConnectionStatus,
    /** The first 6 and last 4 digits. */
    masked: z.string(),
    /** YYYY-MM */
    expiry: z.string(),
    /** 'connected' (the person had no card), 'replaced' (it replaced the person's card), 'unchanged' (this card was already theirs). */
    result: z.enum(['connected', 'replaced', 'unchanged']),
    /** The masked number of the card this one replaced. */
    previousMasked: z.string().optional(),
    /** The transit list version in which the card was first seen published (status active and after). */
    listVersion: z.number().int().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'BankConnection' });
export type Connection = z.infer<typeof Connection>;

export const ConnectionParams = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/) });

/** The body of a status callback POSTed to the bank's callback URL (signed: X-RC-Timestamp, X-RC-Signature, Idempotency-Key = eventId). */
export const StatusEvent = z
  .object({
    /** Also the Idempotency-Key header: a receiver that saw it already drops it (delivery is at least once). */
    key: z.string(),
    event: z.literal('connection.status'),
    subject: z.string(),
    text: z.string(),
    eventId: z.string(),
    connection: Connection,
  })
  .meta({ id: 'BankStatusEvent' });
export type StatusEvent = z.infer<typeof StatusEvent>;

export const PublicBank = z.object({ id: z.string(), name: z.string(), site: z.string().optional(), since: z.string() }).meta({ id: 'PublicBank' });
export const PublicBanksAnswer = z.object({ banks: z.array(PublicBank) }).meta({ id: 'PublicBanksAnswer' });
export type PublicBanksAnswer = z.infer<typeof PublicBanksAnswer>;

/** A bank as the operator registers it (rc-sync-server bank add). */
export const BankId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,31}$/, 'bank id: 2-32 of a-z 0-9 -');
