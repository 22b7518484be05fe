/**
 * Every error the product raises on purpose carries one of these codes.
 * A technician reads the code on a display or in a log and looks it up in the
 * README's table. Codes are grouped by area; a code is never renamed, reused or
 * removed once released (add new ones at the end of their group).
 *
 * The `context` of an RcError must never hold a PAN: only tokens, masked PANs,
 * lengths, status words, file paths and the like.
 */
export const ErrorCode = {
  // card: what the card answered (or did not)
  CardNotMir: 'card.not-mir',
  CardRemoved: 'card.removed',
  CardTimeout: 'card.timeout',
  CardStatus: 'card.status-word',
  CardNoApplication: 'card.no-application',
  CardBadResponse: 'card.bad-response',
  CardMissingData: 'card.missing-data',
  CardBadPan: 'card.bad-pan',
  CardBadExpiry: 'card.bad-expiry',
  CardTooManyApdus: 'card.too-many-apdus',
  TlvMalformed: 'card.tlv-malformed',
  TlvTooDeep: 'card.tlv-too-deep',

  // reader: the PC/SC stack
  PcscUnavailable: 'reader.pcsc-unavailable',
  ReaderNotFound: 'reader.not-found',
  ReaderTimeout: 'reader.timeout',
  ReaderTransmit: 'reader.transmit-failed',
  ReaderBindingMissing: 'reader.binding-missing',

  // token: card-number tokenisation
  TokenKeyInvalid: 'token.key-invalid',
  TokenHsmUnavailable: 'token.hsm-unavailable',
  TokenHsmKeyMissing: 'token.hsm-key-missing',
  TokenDevKeyRefused: 'token.dev-key-refused',
  TokenDeviceTokenRequired: 'token.device-token-required',
  // pantoken: the token scheme goes with the key version (docs/token-key.md)
  TokenSchemeMismatch: 'token.scheme-mismatch',

  // config: device and server configuration files
  ConfigInvalid: 'config.invalid',
  ConfigTooNew: 'config.too-new',
  ConfigNotFound: 'config.not-found',
  TariffInvalid: 'config.tariff-invalid',

  // store: the device's SQLite store and its lists
  StoreSchemaTooNew: 'store.schema-too-new',
  StoreOpenFailed: 'store.open-failed',
  ListRollback: 'store.list-rollback',
  ListInvalid: 'store.list-invalid',
  ListUnknownScope: 'store.list-unknown-scope',
  ListVersionGap: 'store.list-version-gap',
  JournalAckInvalid: 'store.journal-ack-invalid',

  // input files (replay taps, lists, CSV imports)
  InputInvalid: 'input.invalid',

  // sync: the MQTT wire contract
  SyncBadSignature: 'sync.bad-signature',
  SyncRollback: 'sync.list-rollback',
  SyncWrongScope: 'sync.wrong-scope',
  SyncExpired: 'sync.list-expired',
  SyncListFrozen: 'sync.list-frozen',
  SyncBadChunk: 'sync.bad-chunk',
  SyncPayloadInvalid: 'sync.payload-invalid',
  SyncPayloadTooLarge: 'sync.payload-too-large',
  SyncDeviceMismatch: 'sync.device-mismatch',
  SyncBrokerUnavailable: 'sync.broker-unavailable',
  SyncHandlerFailed: 'sync.handler-failed',
  SyncJournalGap: 'sync.journal-gap',
  SyncTlsUntrusted: 'sync.tls-untrusted',

  // server: the operator's sync-server
  ServerImportInvalid: 'server.import-invalid',
  ServerImportTooLarge: 'server.import-too-large',
  ServerImportInterrupted: 'server.import-interrupted',
  ServerNotRunning: 'server.not-running',
  ServerBadRequest: 'server.bad-request',
  ServerNotFound: 'server.not-found',
  ServerInternal: 'server.internal',
  ServerForbiddenOrigin: 'server.forbidden-origin',
  ServerUnsupportedMedia: 'server.unsupported-media-type',
  ServerRateLimited: 'server.rate-limited',
  ServerConsoleMissing: 'server.console-missing',
  ServerTlsFiles: 'server.tls-files',
  ServerTlsInit: 'server.tls-init-failed',
  // cabweb (issue 15): the pages of the cardholder's cabinet and the public portal
  ServerWebMissing: 'server.web-missing',
  // several instances (issue 16, sync-server/start/leader.ts)
  ServerNotLeader: 'server.not-leader',
  ServerLeadershipLost: 'server.leadership-lost',
  ServerSigningKeyMismatch: 'server.signing-key-mismatch',

  // import: CSV imports into the registry (sync-server/import-stage.ts)
  ImportBusy: 'import.busy',

  // report: the reports the region pays from (sync-server/reports/)
  ReportSignatureInvalid: 'report.signature-invalid',

  // auth: operator accounts, console sessions, API tokens (sync-server/auth/)
  AuthUnauthenticated: 'auth.unauthenticated',
  AuthForbidden: 'auth.forbidden',
  AuthBadCredentials: 'auth.bad-credentials',
  AuthRateLimited: 'auth.rate-limited',
  AuthCsrf: 'auth.csrf',
  AuthUserExists: 'auth.user-exists',
  AuthUnknownUser: 'auth.unknown-user',
  AuthUnknownToken: 'auth.unknown-token',
  AuthNoCredentials: 'auth.no-credentials',

  // settlement: the back office's fare engine (a journal entry left out of settlement; never dropped)
  SettlementUnknownRoute: 'settlement.unknown-route',
  SettlementTimeOutOfRange: 'settlement.time-out-of-range',
  SettlementImpossibleTrip: 'settlement.impossible-trip',
  SettlementNotAFare: 'settlement.not-a-fare',

  // notify: messages to guardians (sync-server/notify/)
  NotifyTransportFailed: 'notify.transport-failed',
  NotifyNotConfigured: 'notify.not-configured',

  // bank: the bank connection API over mutual TLS (sync-server/bank/)
  BankUnknownCertificate: 'bank.unknown-certificate',
  BankDisabled: 'bank.disabled',
  BankIdempotencyConflict: 'bank.idempotency-conflict',
  BankIdempotencyKey: 'bank.idempotency-key',
  BankCardConflict: 'bank.card-conflict',
  BankPersonHasCard: 'bank.person-has-card',
  BankRateLimited: 'bank.rate-limited',
  BankConnectionNotFound: 'bank.connection-not-found',
  BankUnknownApplicant: 'bank.unknown-applicant',
  BankRegistry: 'bank.registry',
  BankCallbackFailed: 'bank.callback-failed',
  BankListenerTls: 'bank.listener-tls',

  // io: serial peripherals
  IoPortUnavailable: 'io.port-unavailable',
  IoNoAck: 'io.no-ack',
  IoBadFrame: 'io.bad-frame',
  IoNack: 'io.nack',
  IoTimeout: 'io.timeout',
  IoTamper: 'io.tamper',

  // runtime: the device's tap loop
  RuntimeAlreadyRunning: 'runtime.already-running',
  RuntimeNotRunning: 'runtime.not-running',
  RuntimeJournalFailed: 'runtime.journal-failed',
  RuntimeTapFailed: 'runtime.tap-failed',

  // provision: technicians' set-up
  ProvisionTokenInvalid: 'provision.token-invalid',
  ProvisionTokenUsed: 'provision.token-used',
  ProvisionTokenExpired: 'provision.token-expired',
  ProvisionTokenWrongKind: 'provision.token-wrong-kind',
  ProvisionServerUnreachable: 'provision.server-unreachable',
  ProvisionDeviceRevoked: 'provision.device-revoked',
  ProvisionAlreadyDone: 'provision.already-provisioned',
  ProvisionNotDone: 'provision.not-provisioned',
  ProvisionSealInvalid: 'provision.seal-invalid',
  ProvisionBrokerRefused: 'provision.broker-refused',
  ProvisionSyncTimeout: 'provision.first-sync-timeout',
  ProvisionDiskLow: 'provision.disk-low',
  ProvisionClockSkew: 'provision.clock-skew',
  ProvisionNotConfirmed: 'provision.not-confirmed',
  ProvisionNoRules: 'provision.no-rules',
  ProvisionBrokerFiles: 'provision.broker-files',
  ProvisionBadProof: 'provision.bad-proof',
  ProvisionBadBoxKey: 'provision.bad-box-key',
  ProvisionCheckFailed: 'provision.check-failed',
  ProvisionUnknownPartner: 'provision.unknown-partner',
  ProvisionTlsPin: 'provision.tls-pin-mismatch',
  ProvisionNatsSubject: 'provision.nats-subject',
  // the cardholder's cabinet (issue 15): sign-in through ESIA/OIDC, card connection
  CabinetCardTaken: 'cabinet.card-taken',
  CabinetConnectLocked: 'cabinet.connect-locked',
  CabinetBadState: 'cabinet.bad-state',
  CabinetCodeRejected: 'cabinet.code-rejected',
  CabinetClientRejected: 'cabinet.client-rejected',
  CabinetBadIdToken: 'cabinet.bad-id-token',
  CabinetProviderDown: 'cabinet.provider-down',
  CabinetLoginDeclined: 'cabinet.login-declined',
  CabinetLoginLimited: 'cabinet.login-limited',
  CabinetProviderConfig: 'cabinet.provider-config',
  CabinetSignerFailed: 'cabinet.signer-failed',
  CabinetNoPerson: 'cabinet.no-person',
  CabinetDemoOnly: 'cabinet.demo-only',
  // retention: retiring a token-key version (rc-sync-server key retire, docs/token-key.md)
  TokenKeyVersionCurrent: 'token.key-version-current',
  TokenKeyVersionInUse: 'token.key-version-in-use',
  TokenKeyVersionUnknown: 'token.key-version-unknown',
  TokenKeyVersionRetired: 'token.key-version-retired',
  // db: the registry's database (SQLite or PostgreSQL, sync-server/db/, docs/postgres.md)
  DbUnavailable: 'db.unavailable',
  DbConstraint: 'db.constraint',
  DbQueryFailed: 'db.query-failed',
  DbValueOutOfRange: 'db.value-out-of-range',
  DbPragmaUnsupported: 'db.pragma-unsupported',
  DbBadSpec: 'db.bad-spec',
  DbSchemaNewer: 'db.schema-newer',
  DbCollationNotBytewise: 'db.collation-not-bytewise',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class RcError extends Error {
  override readonly name = 'RcError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): { code: ErrorCode; message: string; context?: Record<string, unknown> } {
    return this.context ? { code: this.code, message: this.message, context: this.context } : { code: this.code, message: this.message };
  }
}

export function isRcError(e: unknown, code?: ErrorCode): e is RcError {
  return e instanceof RcError && (code === undefined || e.code === code);
}
