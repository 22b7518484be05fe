import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { VirtualCard } from './types.js';
import { createEmvCard } from './emv-card.js';
import { createTraceCard } from './trace-card.js';
import { withFaults } from './faults.js';

/**
 * A JSON-serialisable description of a virtual card. The same spec drives the
 * in-process channel (device/vcard/inprocess.ts) and the vpcd connector that
 * runs cards in a child process, so it must survive JSON.stringify/parse.
 */

const hexNonEmpty = z.string().regex(/^(?:[0-9a-fA-F]{2})+$/, 'non-empty even number of hex digits');
const apduIndex = z.number().int().min(1).max(1000);

/** Faults, composable on any card. APDUs are counted from 1 since the card was powered (GET RESPONSE and repeats count too). */
export const VCardFaults = z
  .object({
    /** Answer the first N APDUs, then leave the field (the (N+1)-th APDU gets {kind:'remove'}). */
    removeAfterApdus: z.number().int().min(0).max(1000).optional(),
    /** The N-th APDU gets no answer at all. */
    silentAt: apduIndex.optional(),
    /** The N-th APDU is answered with only this status word. */
    statusWordAt: z.object({ apdu: apduIndex, sw: z.string().regex(/^[0-9a-fA-F]{4}$/) }).optional(),
    /** The N-th answer loses the second half of its data (status word 9000 kept). */
    truncateAt: apduIndex.optional(),
    /** The N-th answer's outer TLV claims more bytes than it has. */
    garbleTlvAt: apduIndex.optional(),
    /** Every answer with data first says 61xx; the data comes on GET RESPONSE (00 C0 00 00 xx). */
    needGetResponse: z.boolean().optional(),
    /** Every answer with data first says 6Cxx unless the command's Le is exactly xx; the data comes on the repeat. */
    wrongLe: z.boolean().optional(),
  })
  .strict();
export type VCardFaults = z.infer<typeof VCardFaults>;

export const SyntheticScheme = z.enum(['mir', 'visa', 'mastercard']);
export type SyntheticScheme = z.infer<typeof SyntheticScheme>;

export const EmvApplicationSpec = z
  .object({
    aid: z.string().regex(/^(?:[0-9a-fA-F]{2}){5,16}$/),
    label: z.string().max(16).optional(),
    /** Application priority indicator (tag 87), 1 = highest. */
    priority: z.number().int().min(1).max(15).optional(),
  })
  .strict();
export type EmvApplicationSpec = z.infer<typeof EmvApplicationSpec>;

/** Which data elements go in which record. Tags among 57, 5A, 5F24, 5F34, 9F24, 5F20, 5F25, 5F28, 9F07, 8C, 8D. */
export const EmvRecordSpec = z
  .object({
    sfi: z.number().int().min(1).max(30),
    record: z.number().int().min(1).max(254),
    tags: z.array(z.string().regex(/^[0-9A-Fa-f]{2,4}$/)),
  })
  .strict();
export type EmvRecordSpec = z.infer<typeof EmvRecordSpec>;

export const EmvCardSpec = z
  .object({
    kind: z.literal('emv'),
    scheme: SyntheticScheme.default('mir'),
    /** Card number (synthetic in tests): 16 to 19 digits. */
    pan: z.string().regex(/^\d{16,19}$/),
    /** YYYY-MM */
    expiry: z.string().regex(/^\d{4}-(?:0[1-9]|1[0-2])$/),
    /** PAN sequence number (tag 5F34) as 2 digits; absent: the card has no 5F34. */
    psn: z
      .string()
      .regex(/^\d{2}$/)
      .optional(),
    /** Payment Account Reference (tag 9F24), ASCII. */
    par: z
      .string()
      .regex(/^[\x20-\x7e]{1,29}$/)
      .optional(),
    gpoFormat: z.union([z.literal(1), z.literal(2)]).default(2),
    panLocation: z.enum(['5A', 'track2-only']).default('5A'),
    /** Record layout; default: SFI 1 record 1 holds everything. */
    records: z.array(EmvRecordSpec).min(1).max(16).optional(),
    /** PDOL tags and lengths; empty array: no PDOL. Default: a typical Mir PDOL. */
    pdol: z.array(z.object({ tag: z.string().regex(/^[0-9A-Fa-f]{2,4}$/), length: z.number().int().min(1).max(32) }).strict()).optional(),
    /** Applications in the PPSE (co-badged cards list several); default: one of `scheme`. */
    applications: z.array(EmvApplicationSpec).min(1).max(8).optional(),
    /** Whether the card answers SELECT 2PAY.SYS.DDF01 (false: 6A82). */
    ppse: z.boolean().default(true),
    atr: hexNonEmpty.optional(),
    faults: VCardFaults.optional(),
  })
  .strict();
export type EmvCardSpec = z.infer<typeof EmvCardSpec>;

export const TraceExchange = z.object({ command: hexNonEmpty, response: hexNonEmpty }).strip();
/** The recorded-trace file format: `{"atr"?: hex, "exchanges": [{"command": hex, "response": hex}]}`. */
export const TraceFile = z
  .object({
    atr: hexNonEmpty.optional(),
    description: z.string().optional(),
    exchanges: z.array(TraceExchange).max(1000),
  })
  .strip();
export type TraceFile = z.infer<typeof TraceFile>;

export const TraceCardSpec = z
  .object({
    kind: z.literal('trace'),
    /** The trace inline, or the path of a trace JSON file. */
    trace: z.union([TraceFile, z.string().min(1)]),
    faults: VCardFaults.optional(),
  })
  .strict();
export type TraceCardSpec = z.infer<typeof TraceCardSpec>;

export const VCardSpec = z.discriminatedUnion('kind', [EmvCardSpec, TraceCardSpec]);
/** What callers write (defaults optional). */
export type VCardSpec = z.input<typeof VCardSpec>;
/** After validation (defaults filled). */
export type VCardSpecParsed = z.output<typeof VCardSpec>;

/** Validate a spec from JSON/CLI/config input; bad input → RcError input.invalid. */
export function parseVCardSpec(raw: unknown): VCardSpecParsed {
  const r = VCardSpec.safeParse(raw);
  if (!r.success) {
    throw new RcError(ErrorCode.InputInvalid, 'invalid virtual card spec', {
      issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return r.data;
}

/** Load and validate a trace file. */
export function loadTraceFile(path: string): TraceFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new RcError(ErrorCode.InputInvalid, 'cannot read the trace file', { path, reason: (e as Error).message });
  }
  const r = TraceFile.safeParse(raw);
  if (!r.success) {
    throw new RcError(ErrorCode.InputInvalid, 'invalid trace file', {
      path,
      issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  }
  return r.data;
}

/** Build the card behaviour a spec describes (validated here; bad spec → RcError input.invalid). */
export function createVirtualCard(spec: VCardSpec): VirtualCard {
  const s = parseVCardSpec(spec);
  const base = s.kind === 'emv' ? createEmvCard(s) : createTraceCard(typeof s.trace === 'string' ? loadTraceFile(s.trace) : s.trace);
  return s.faults ? withFaults(base, s.faults) : base;
}
