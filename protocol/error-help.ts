import type { ErrorCode } from './errors.js';

/**
 * What each error code means and what a technician or operator should do.
 * The README's error table is generated from this (npm run docs:errors). Every
 * code in protocol/errors.ts must be described here (the type says so), and a
 * unit test checks that the README lists them.
 */
export const ERROR_HELP: Record<ErrorCode, { meaning: string; action: string }> = {
  'card.not-mir': {
    meaning: 'The card is a payment card of another scheme (Visa, Mastercard, …); only Mir cards are Resident Cards.',
    action: 'Ask the holder for their Mir card.',
  },
  'card.removed': { meaning: 'The card left the field before the read finished.', action: 'Ask the holder to tap again and hold the card still.' },
  'card.timeout': { meaning: 'The card did not answer in time.', action: 'Tap again; if it repeats with many cards, check the reader (rc-provision check).' },
  'card.status-word': {
    meaning: 'The card refused a command (an error status word).',
    action: 'Tap again; a card that always fails may be blocked by its bank.',
  },
  'card.no-application': {
    meaning: 'No payment application the system accepts was found on the card.',
    action: 'Ask for a Mir card; the card may not be contactless.',
  },
  'card.bad-response': { meaning: 'The card answered something that is not a valid EMV answer.', action: 'Tap again; a card that always fails is faulty.' },
  'card.missing-data': {
    meaning: 'The card did not give the card number, expiry or sequence number.',
    action: 'Tap again; a card that always fails is faulty.',
  },
  'card.bad-pan': { meaning: 'The card number on the card is not valid (length or check digit).', action: 'The card is faulty or forged; refuse it.' },
  'card.bad-expiry': { meaning: 'The expiry date on the card is not a valid date.', action: 'The card is faulty; refuse it.' },
  'card.too-many-apdus': { meaning: 'The read took more commands than any real card needs; stopped.', action: 'The card is faulty; refuse it.' },
  'card.tlv-malformed': { meaning: 'The card answered bytes that are not well-formed BER-TLV.', action: 'Tap again; a card that always fails is faulty.' },
  'card.tlv-too-deep': { meaning: 'The card answered TLV nested deeper than EMV allows.', action: 'The card is faulty or hostile; refuse it.' },
  'reader.pcsc-unavailable': {
    meaning: 'The PC/SC service (pcscd) is not running or not reachable.',
    action: 'Check that pcscd runs (systemctl status pcscd); the device retries by itself.',
  },
  'reader.not-found': {
    meaning: 'The named card reader is not connected.',
    action: 'Check the reader cable and its name in the config (rc-device status lists readers).',
  },
  'reader.timeout': { meaning: 'No card was presented within the time allowed.', action: 'Tap a card sooner, or raise --timeout-ms.' },
  'reader.transmit-failed': { meaning: 'The reader could not exchange a command with the card.', action: 'Tap again; if it repeats, replug the reader.' },
  'reader.binding-missing': {
    meaning: 'The PC/SC binding (smartcard package) is not installed or did not build.',
    action: 'Install libpcsclite-dev and reinstall the package (npm ci).',
  },
  'token.key-invalid': {
    meaning: 'The card-token key or its version is malformed.',
    action: 'Set RC_TOKEN_KEY to 32–128 hex digits and RC_TOKEN_KEY_VERSION to an integer, or re-provision.',
  },
  'token.hsm-unavailable': {
    meaning: 'The PKCS#11 token that holds the card-token key cannot be used: library missing, token not found, or the PIN refused.',
    action: 'Check tokenKey.pkcs11 (library path, token label) and the PIN file; with SoftHSM2 check SOFTHSM2_CONF; see docs/token-key.md.',
  },
  'token.dev-key-refused': {
    meaning:
      'No card-token key is configured (or the configured one is the public development key), and this is not the demo: tokens made with that key can be reversed to card numbers by anyone.',
    action: 'Configure tokenKey.pkcs11 (device) or --pkcs11-* / RC_TOKEN_KEY (server), see docs/token-key.md; only the demo and tests pass --dev-token-key.',
  },
  'token.device-token-required': {
    meaning:
      "The server keeps the card-token key in its PKCS#11 token, so it hands it out only wrapped for a device's own token; this device enrolled without one.",
    action: 'Enrol (or rotate) with --pkcs11-library, --pkcs11-token and --pkcs11-pin-file; see docs/token-key.md.',
  },
  'token.hsm-key-missing': {
    meaning: 'The PKCS#11 token has no card-token key of that label and version.',
    action:
      'Enrol the device again (the key arrives wrapped for its token), or import the key on the server with rc-sync-server key import; see docs/token-key.md.',
  },
  // pantoken
  'token.scheme-mismatch': {
    meaning:
      'The key version still derives tokens from PAN ‖ PSN (made before the PAN ‖ expiry change), so a card typed by its number and expiry cannot be tokenised with it.',
    action: 'Rotate the server to a new key version (rc-sync-server key rotate) and re-import the cards; see docs/token-key.md, "The PAN ‖ expiry migration".',
  },
  'config.invalid': {
    meaning: 'A configuration file does not validate; the message names the file and the field.',
    action: 'Fix the named field (docs/config.md describes every field).',
  },
  'config.too-new': {
    meaning: 'The configuration was written for a newer version of the software.',
    action: 'Update the software, or use a config of this version.',
  },
  'config.not-found': {
    meaning: 'The configuration file does not exist or cannot be read.',
    action: 'Check the path; provision the device (rc-provision init) if it has no config.',
  },
  'config.tariff-invalid': { meaning: 'The tariff or schedule does not validate.', action: 'Fix the named field (docs/config.md).' },
  'store.schema-too-new': {
    meaning: 'The device database was written by a newer version of the software.',
    action: 'Update the software; do not downgrade a device in service.',
  },
  'store.open-failed': { meaning: 'The device database cannot be opened.', action: 'Check disk space and permissions of the data directory.' },
  'store.list-rollback': {
    meaning: 'A list older than the one held was offered; refused.',
    action: 'Nothing: the device keeps its newer list. If it repeats, check the server.',
  },
  'store.list-invalid': {
    meaning: 'A list has an invalid entry (unknown category or reason, bad token, bad date); nothing was applied.',
    action: 'Fix the list at its source; the device keeps its current list.',
  },
  'store.list-unknown-scope': { meaning: 'A list names a scope this device does not know.', action: 'Check the scopes in the device config.' },
  'store.list-version-gap': { meaning: 'A delta does not start at the version the device holds; refused.', action: 'Nothing: the device asks for a snapshot.' },
  'store.journal-ack-invalid': {
    meaning: 'The server acknowledged a journal sequence the device never wrote.',
    action: 'Check that two devices do not share one identity.',
  },
  'input.invalid': { meaning: 'An input file (taps, lists) does not validate; the message names the line.', action: 'Fix the named line.' },
  'sync.bad-signature': {
    meaning: 'A list message is not signed by the server key the device trusts; refused.',
    action: 'If it repeats, someone may be forging lists: alert the operator.',
  },
  'sync.list-rollback': {
    meaning: 'The server offered an older list version than the device holds; refused.',
    action: 'Nothing: the device keeps its newer list.',
  },
  'sync.wrong-scope': { meaning: 'A list message for another scope arrived; refused.', action: 'Check broker ACLs.' },
  'sync.list-expired': { meaning: 'A list message is past its expiry; refused.', action: 'Check the server clock and that the server publishes.' },
  'sync.list-frozen': {
    meaning: "The device's list is older than policy allows (no sync for too long).",
    action: 'Restore the network connection; the device keeps deciding on its current list.',
  },
  'sync.bad-chunk': { meaning: 'A snapshot chunk does not match its signed hash; refused.', action: 'Nothing: the device downloads it again.' },
  'sync.payload-invalid': { meaning: 'A message does not match the wire schema; refused.', action: 'Check that server and device versions match.' },
  'sync.payload-too-large': { meaning: 'A message is larger than the protocol allows; refused.', action: 'If it repeats, check who publishes on the broker.' },
  'sync.device-mismatch': { meaning: 'A journal batch claims another device id than its sender; refused.', action: 'Check device identities and broker ACLs.' },
  'sync.journal-gap': {
    meaning: 'The server lost journal entries it had acknowledged, and the device already pruned them (older than 30 days); they cannot be sent again.',
    action: 'Restore the server registry from a newer backup, or record the gap (the log gives the seq range).',
  },
  'sync.tls-untrusted': {
    meaning:
      'The MQTT broker presented a TLS certificate that the CA pinned at enrolment did not sign, or one for another name; the device did not connect (it may be an impostor).',
    action:
      'Check that the device reaches the right broker address; if the operator replaced the CA, rotate the device (rc-provision rotate) or enrol it again.',
  },
  'sync.broker-unavailable': { meaning: 'The MQTT broker cannot be reached.', action: 'Check the network; the device keeps deciding and retries by itself.' },
  'sync.handler-failed': {
    meaning: 'An unexpected fault while the device handled a message from the server; the message was refused, the lists are unchanged.',
    action: 'Nothing on site: the device asks again later. Send the log lines around it to the developers if it repeats.',
  },
  'server.import-invalid': {
    meaning: 'An import file has invalid rows; nothing was applied (the report lists line, column and reason).',
    action: 'Fix the rows, or import with --skip-invalid.',
  },
  'server.import-too-large': {
    meaning: 'The import file breaks a size limit: a line longer than 16 KiB, more than 32 columns, or a file over 2 GiB. Nothing was imported.',
    action: 'Check the file is the right CSV (one record per line, the documented columns); split a file over 2 GiB.',
  },
  'server.import-interrupted': {
    meaning:
      'An import did not run to its end: its worker stopped, or the server stopped between the registry and the lists. The registry change is kept or dropped whole; at the next start the lists are recomputed from the registry.',
    action: 'Check the server log; run the import again if its report did not come back (imports are idempotent).',
  },
  'import.busy': {
    meaning: 'Another import is running (one import at a time, HTTP 409); this one was not started and nothing of it was read.',
    action: 'Wait until the running import is done (GET /v1/imports shows it), then send the file again.',
  },
  'server.not-running': { meaning: 'The sync-server is not reachable at the given URL.', action: 'Start it (rc-sync-server start) or pass --server URL.' },
  'server.bad-request': { meaning: 'The server refused a request as malformed.', action: "Check the command's arguments." },
  'server.not-found': { meaning: 'The server does not know the named object (device, person, token).', action: 'Check the id.' },
  'server.internal': {
    meaning: 'An unexpected fault on the server while it answered a request (HTTP 500); nothing was changed by the failed request.',
    action: 'Retry; if it repeats, send the server log lines around it to the developers.',
  },
  'report.signature-invalid': {
    meaning: 'A report does not match its signature: its content was changed after the server signed it, it is not signed, or it is signed by another key.',
    action: 'Do not pay from it; get the report again from the operator and check its key against GET /v1/public-key.',
  },
  'auth.unauthenticated': {
    meaning: 'The operator API was called without a valid session or API token (none, unknown, expired, revoked, or its user disabled).',
    action: 'Sign in to the console again, or pass a valid token: Authorization: Bearer … (rc-sync-server token create; the CLI reads DATA/admin.token).',
  },
  'auth.forbidden': {
    meaning: "The caller is signed in, but its role (or its school or carrier) may not do this; e.g. a carrier asking for another carrier's report.",
    action: 'Ask an admin for an account or token of a role that may (rc-sync-server user list shows roles).',
  },
  'auth.bad-credentials': {
    meaning: 'Wrong user name or password, or the account is disabled.',
    action: 'Check both; an admin resets a password with rc-sync-server user passwd NAME.',
  },
  'auth.rate-limited': {
    meaning: 'Too many failed sign-ins for this user name or from this address in the last 15 minutes; sign-in is refused for a while.',
    action: 'Wait 15 minutes; if nobody on your side made them, look at the audit log (rc-sync-server audit) for session.login failures.',
  },
  'auth.csrf': {
    meaning: "A console request that changes something came without the session's x-csrf-token header (or with a wrong one): it may come from another page.",
    action: 'Reload the console; scripts should use an API token (Authorization: Bearer …) instead of the session cookie.',
  },
  'auth.user-exists': {
    meaning: 'A user of that name exists already.',
    action: 'Choose another name, or change the existing one (user passwd, user disable).',
  },
  'auth.unknown-user': { meaning: 'No user of that name.', action: 'Check the name with rc-sync-server user list.' },
  'auth.unknown-token': { meaning: 'No API token with that id.', action: 'Check the id with rc-sync-server token list.' },
  'auth.no-credentials': {
    meaning: 'The CLI found no API token: no --token-file, no RC_API_TOKEN or RC_API_TOKEN_FILE, and no admin.token in the data directory.',
    action: "Pass --data DIR (the server's data directory, where start writes admin.token), --token-file FILE, or set RC_API_TOKEN.",
  },
  'server.forbidden-origin': {
    meaning:
      "The operator API refused a request whose Host is not the listener's own address, or that came from a web page of another origin (Origin, Sec-Fetch-Site: cross-site); nothing was changed.",
    action: 'Call the API with rc-sync-server or from the server itself (http://127.0.0.1:<port>); a browser page of another site may not call it.',
  },
  'server.unsupported-media-type': {
    meaning: 'The operator API refused a request body of an unexpected content type (HTTP 415): JSON routes take application/json, imports take text/csv.',
    action: 'Send the body with the right Content-Type header (rc-sync-server does).',
  },
  'server.tls-files': {
    meaning: 'A TLS certificate, key or CA file given to the sync-server is missing, unreadable, not PEM, or the key does not belong to the certificate.',
    action:
      'Check the --tls-* / --enrol-tls-* paths and that the service user can read them; rc-sync-server tls init makes a CA and server certificate for a small site.',
  },
  'server.tls-init-failed': {
    meaning: 'rc-sync-server tls init could not make the CA or server certificate (openssl missing or failing, or the directory not writable).',
    action: 'Install openssl (apt-get install openssl), check the directory, and run it again; existing files are never overwritten.',
  },
  'server.rate-limited': {
    meaning:
      'A device sent journal entries faster than its per-device rate allows; the excess was not stored and not acknowledged, the device resends it later.',
    action: 'Nothing, if it is rare; if a device hits it often, check it for a fault or tampering (rc-sync-server journal --device ID).',
  },
  'server.console-missing': {
    meaning: 'The operator console was asked for, but its bundle (dist/console/: index.html, app.js, app.css) is not there; the API works without it.',
    action: 'Build it (npm run build), or point RC_CONSOLE_DIR at a built dist/console/, and restart rc-sync-server.',
  },
  // cabweb (issue 15): the pages of the cardholder's cabinet and the public portal
  'server.web-missing': {
    meaning:
      "The cardholder's cabinet (/cabinet/) or the public portal (/portal/) was asked for, but its bundle (dist/cabinet/, dist/portal/) is not there; the JSON API works without it.",
    action: 'Build it (npm run build), or point RC_WEB_DIR at a built dist/ (holding cabinet/ and portal/), and restart rc-sync-server.',
  },
  // several instances (issue 16, sync-server/start/leader.ts)
  'server.not-leader': {
    meaning:
      'This sync-server instance is a follower (another instance holds the leadership, docs/postgres.md "Several instances"): imports, configuration changes and charging runs are done by the leader only. Nothing was changed (HTTP 503).',
    action: 'Send the request to the leader (its log says "leader: this instance runs the publisher…"), or again in a few seconds after a failover.',
  },
  'server.leadership-lost': {
    meaning:
      "The leader's connection holding the PostgreSQL advisory lock failed or stopped answering: the instance stopped its leader-only jobs at once and exits for its service manager to restart it; another instance takes over.",
    action: 'Check the network to PostgreSQL and PostgreSQL itself; run rc-sync-server under a service manager that restarts it (systemd Restart=on-failure).',
  },
  'server.signing-key-mismatch': {
    meaning:
      "The registry was first opened with another list-signing key than DATA/signing-key.pem (its public key's SHA-256 is kept in the registry): an instance started on a shared PostgreSQL registry without a copy of the first one's key, or a data dir restored without its key. Devices trust only the first key, so everything this instance signed would be refused. It did not start; nothing was changed (a key it made for this start is deleted again).",
    action:
      "Copy signing-key.pem (0600) from the data dir of the instance that made the registry into this one and start again. If the key was replaced on purpose and every device was provisioned again with the new public key, delete the registry row meta(key = 'signing-key') once.",
  },
  'settlement.unknown-route': {
    meaning: 'A bus journal entry names a route the published tariff lacks (or none); stored, left out of settlement.',
    action: 'Publish a tariff with the route or fix the device config; rc-sync-server journal --flagged lists them.',
  },
  'settlement.not-a-fare': {
    meaning: "A partner's resident check (a discount shown, no fare): stored and reported (report partners), left out of fare settlement.",
    action: 'Nothing to do: it is not a trip.',
  },
  'settlement.time-out-of-range': {
    meaning: 'A journal entry is timed far in the future or past of its arrival (a wrong device clock); stored, left out of settlement.',
    action: 'Check the device clock (NTP); rc-sync-server journal --flagged lists such entries.',
  },
  'settlement.impossible-trip': {
    meaning:
      'The same card was tapped on two different vehicles or routes within 60 s, which no passenger can do (a cloned card or a forged journal); the later entry is stored, flagged and not charged.',
    action: 'Investigate the card and the devices (rc-sync-server journal --flagged lists such entries).',
  },
  'notify.transport-failed': {
    meaning:
      'A message to a guardian was not accepted by the SMTP server or the webhook; it stays in the outbox (retried with backoff, or failed when the receiver refused it for good).',
    action: 'See rc-sync-server notifications for the reason; fix the mail server, the gateway or the guardian address (import guardians again).',
  },
  'notify.not-configured': {
    meaning: 'A guardian gets e-mail but the server was started without an SMTP server; the messages wait in the outbox.',
    action: 'Restart the server with --smtp-url smtp://host:port; the waiting messages are then sent.',
  },
  // bank: the bank connection API (sync-server/bank/, docs/bank-api.md)
  'bank.unknown-certificate': {
    meaning:
      'The client certificate is signed by a CA the bank listener trusts, but its SHA-256 fingerprint is not registered for any bank (or it was revoked).',
    action:
      'The bank uses the certificate it was issued (rc-sync-server bank list shows the fingerprints); the operator registers a new one with rc-sync-server bank cert.',
  },
  'bank.disabled': {
    meaning: 'The bank is known but disabled by the operator: its requests are refused.',
    action: 'Ask the operator; they re-enable it with rc-sync-server bank enable --id ID once the reason is settled.',
  },
  'bank.idempotency-conflict': {
    meaning: 'The Idempotency-Key was used before with a different request body: nothing was done.',
    action: 'Use a new Idempotency-Key for a new request; resend a request only with the very same body.',
  },
  'bank.idempotency-key': {
    meaning: 'The request has no Idempotency-Key header, or it is not 8..128 printable characters.',
    action: 'Send a fresh random key (e.g. a UUID) with every new connection request, and the same key when retrying it.',
  },
  'bank.card-conflict': {
    meaning: 'The card is already connected to another person (one card, one holder): nothing was changed.',
    action: 'Tell the applicant; the card has to be disconnected from the other person first (operator or that person in the cabinet).',
  },
  'bank.person-has-card': {
    meaning: 'The applicant already has another active card (context.currentMasked) and the request did not say replace: nothing was changed.',
    action: 'Confirm with the applicant that the new card replaces the old one and resend with "replace": true and a new Idempotency-Key.',
  },
  'bank.rate-limited': {
    meaning: 'The bank sent more requests than its rate allows; this one was not processed.',
    action: 'Wait the seconds the Retry-After header says, then resend (same Idempotency-Key).',
  },
  'bank.connection-not-found': { meaning: 'No connection of this bank has that id.', action: 'Use the id the connection request answered.' },
  'bank.unknown-applicant': {
    meaning: 'The applicant cannot be identified: no person in the registry has this SNILS.',
    action: 'Send the applicant as {personId}, or ask the operator to link the person to their SNILS (rc-sync-server identities import).',
  },
  'bank.registry': {
    meaning: 'A bank administration command was refused: the bank id exists already, is unknown, or a certificate or callback URL is not valid.',
    action: 'Read the message; rc-sync-server bank list shows the banks and their certificates.',
  },
  'bank.callback-failed': {
    meaning: "A status callback to a bank's URL failed; it is retried with backoff (a permanent refusal, a 4xx, is not).",
    action: "Check the bank's callback URL and that its receiver answers 2xx; rc-sync-server bank list shows the undelivered events.",
  },
  'bank.listener-tls': {
    meaning: 'The bank listener (--bank-listen) needs the server certificate (--tls-cert, --tls-key, --tls-ca) and the bank CA in the data directory.',
    action: 'Start with --tls-* (see rc-sync-server tls init); the bank CA is made by the first rc-sync-server bank add.',
  },
  'io.port-unavailable': {
    meaning: 'A serial port cannot be opened or went away.',
    action: 'Check the cable and the port path in the config; the device reconnects by itself.',
  },
  'io.no-ack': { meaning: 'A peripheral did not acknowledge a command after all retries.', action: "Check the peripheral's power and cable." },
  'io.bad-frame': {
    meaning: 'Bytes from a peripheral were not a valid frame (bad checksum or framing).',
    action: 'Check the cable and baud rate; occasional ones are retried.',
  },
  'io.nack': { meaning: 'A peripheral refused a command.', action: "Check the peripheral's protocol version." },
  'io.timeout': {
    meaning: 'A turnstile acknowledged an opening but reported neither a passage nor an open timeout; the tap counts as not passed.',
    action: "Check the controller's passage sensors and firmware (docs/serial-protocol.md §4.2).",
  },
  'io.tamper': {
    meaning: 'A turnstile controller or display reported tampering (gate forced, case opened).',
    action: 'Inspect the turnstile or validator on site; the device keeps working.',
  },
  'runtime.already-running': { meaning: "Another rc-device run holds this device's database.", action: 'Stop the other instance (systemctl stop rc-device).' },
  'runtime.not-running': { meaning: 'No running device answers on the status socket.', action: 'Start it (rc-device run --config FILE).' },
  'runtime.journal-failed': {
    meaning: 'A tap could not be written to the journal (disk full, store closed or damaged); the passenger was refused.',
    action: 'Check free disk space and the store file (rc-device status); restart the device; replace the storage if it repeats.',
  },
  'runtime.tap-failed': {
    meaning: 'An unexpected fault in the tap loop; the tap was dropped, the device kept running.',
    action: 'Send the log lines around it to the developers; the device needs no action.',
  },
  'provision.token-invalid': {
    meaning: 'The enrolment token is not known to the server.',
    action: 'Ask the operator for a new token (rc-sync-server enrol-token create).',
  },
  'provision.token-used': { meaning: 'The enrolment token was already used.', action: 'Ask the operator for a new token.' },
  'provision.token-expired': { meaning: 'The enrolment token has expired.', action: 'Ask the operator for a new token.' },
  'provision.token-wrong-kind': {
    meaning: 'The enrolment token was made for another kind of device or school/route.',
    action: 'Ask the operator for a token of the right kind.',
  },
  'provision.server-unreachable': { meaning: 'The sync-server cannot be reached at the given URL.', action: 'Check the network and the --server URL.' },
  'provision.device-revoked': { meaning: 'The operator revoked this device.', action: 'Ask the operator; re-provision with a new token.' },
  'provision.already-provisioned': { meaning: 'The device is already provisioned.', action: 'Use rc-provision show, or rc-provision reset first.' },
  'provision.not-provisioned': { meaning: 'The device has no identity yet.', action: 'Run rc-provision init.' },
  'provision.seal-invalid': {
    meaning: 'The secrets the server sealed to this device do not open with its key (tampered or meant for another device).',
    action: 'Run rc-provision init again with a new token; if it repeats, check for a proxy altering traffic.',
  },
  'provision.broker-refused': {
    meaning: "The MQTT broker refused this device's credentials.",
    action: 'Run rc-provision rotate; if the device was revoked, ask the operator for a new token and re-provision.',
  },
  'provision.first-sync-timeout': {
    meaning: 'The first list sync did not complete in time.',
    action: 'Check the network to the broker and that the server publishes lists (rc-sync-server status), then run rc-provision check again.',
  },
  'provision.disk-low': {
    meaning: "The device's data directory has too little free space.",
    action: 'Free disk space (old logs) or use a larger card; lists need room to grow.',
  },
  'provision.clock-skew': {
    meaning: "The device clock differs too much from the server's, or is not plausible.",
    action: 'Set the clock (enable NTP: timedatectl set-ntp true); lists and journals depend on it.',
  },
  'provision.not-confirmed': { meaning: 'A factory reset was not confirmed; nothing was deleted.', action: 'Answer yes at the prompt, or pass --yes.' },
  'provision.unknown-partner': {
    meaning: 'A partner device names a partner id the server has not imported (rc-sync-server import partners FILE).',
    action: 'Check --partner; ask the operator to import the partner first, then run init again.',
  },
  'provision.no-rules': {
    meaning: "The server has no tariff, school/canteen or partner rules this device needs (or not for its route, or not for the partner's category).",
    action: 'Ask the operator to publish them (rc-sync-server config set FILE), then run init again.',
  },
  'provision.broker-files': {
    meaning: 'The server could not write the Mosquitto password/ACL files or signal Mosquitto to reload.',
    action: 'Check the paths and permissions given to rc-sync-server start (--mosquitto-*), and that Mosquitto runs.',
  },
  'provision.bad-proof': {
    meaning:
      "A device request was not signed by the device's enrolled key, or it replays a request already seen (its nonce is kept in the registry, so a replay is refused also after a server restart).",
    action: 'Re-provision the device (rc-provision reset, then init with a new token).',
  },
  'provision.bad-box-key': {
    meaning: "The enrolment request's box public key cannot receive sealed secrets (e.g. all zero bytes); nothing was created and the token was not spent.",
    action: 'Generate new device keys (rc-provision reset) and enrol again with the same token.',
  },
  'provision.check-failed': {
    meaning: 'A self-test item (rc-provision check) failed with an unexpected fault rather than a known one; the detail says what.',
    action: 'Run rc-provision check again; if it repeats, send its output (--json) to the developers.',
  },
  'provision.tls-pin-mismatch': {
    meaning:
      "The enrolment server's TLS certificate is not signed by the CA whose fingerprint the enrolment token pins (or the server does not speak TLS): nothing was sent to it.",
    action: 'Check --server (https:// and the address the operator gave); if the operator changed certificates, ask for a new token.',
  },
  'provision.nats-subject': {
    meaning:
      'A broker ACL line cannot be carried by the NATS cluster: a topic level (a device id, a scope) holds a dot, which NATS reads as a level separator, or the line is not understood. The NATS users file was not written.',
    action:
      'Keep device ids and scope names without dots when the broker is NATS (docs/cluster.md); enrolment never makes such ids, so look for one added by hand.',
  },
  // the cardholder's cabinet (issue 15)
  'cabinet.card-taken': {
    meaning: 'The card is already connected to another person; one card belongs to one person.',
    action:
      'The holder checks the number; if it is their card, the operator checks the registry (a bank file or staff connection may have put it on someone else).',
  },
  'cabinet.connect-locked': {
    meaning: 'Five wrong card numbers or expiry dates were typed in the last hour (by this person or from this address): connecting is locked for an hour.',
    action: 'Wait an hour and type the number from the card carefully; a holder who cannot should ask the operator to connect the card (staff-assisted path).',
  },
  'cabinet.bad-state': {
    meaning: 'The sign-in came back with a state this server did not issue, or one already used or expired (a stale tab, a replayed or forged link).',
    action: 'Start the sign-in again from the cabinet page.',
  },
  'cabinet.code-rejected': {
    meaning: 'The identity provider refused the authorization code (expired, already used, or issued for another redirect).',
    action: 'Start the sign-in again; if it repeats, check the server clock and the configured redirect URI.',
  },
  'cabinet.client-rejected': {
    meaning: "The identity provider refused this system's client credentials (the client_secret signature, client id or certificate).",
    action: "Operator: check the signer (key, certificate registered with ESIA, the external command) and the client id in the cabinet's configuration.",
  },
  'cabinet.bad-id-token': {
    meaning: "The identity provider's token did not verify (signature, issuer, audience, nonce or lifetime): it may be forged.",
    action: "Operator: check the provider's published key (PEM or JWKS) in the configuration and the server clock; the sign-in was refused.",
  },
  'cabinet.provider-down': {
    meaning: 'The identity provider did not answer or answered something unusable.',
    action: 'Try again later; the operator checks that the provider is reachable from the server.',
  },
  'cabinet.login-declined': {
    meaning: 'The person cancelled the sign-in or refused the requested access at the identity provider.',
    action: 'Sign in again and grant access.',
  },
  'cabinet.login-limited': {
    meaning: 'Too many sign-in attempts from this address in a short time.',
    action: 'Wait a few minutes and sign in again.',
  },
  'cabinet.provider-config': {
    meaning: "The cabinet's identity provider configuration is not valid (missing URL, key, client id or signer).",
    action: 'Operator: fix the cabinet configuration file (see the README, "Cardholder\'s cabinet") and restart.',
  },
  'cabinet.signer-failed': {
    meaning: 'The client_secret signature could not be made (key file unreadable, the external signing command failed or timed out).',
    action: 'Operator: run the signing command by hand with the same input; check the key or the token holding it.',
  },
  'cabinet.no-person': {
    meaning: 'The person asked for is not in the registry.',
    action: 'Check the person id; a holder who never signed in to the cabinet and is not in any import has no person yet.',
  },
  'cabinet.demo-only': {
    meaning:
      "The cabinet configuration names the demo's identity provider (kind demo), which lets anyone sign in as anyone; only the demo (npm start) may use it.",
    action: 'Operator: configure ESIA or an OpenID Connect provider in the --cabinet file (see the README, "Cardholder\'s cabinet").',
  },
  // retention: retiring a token-key version (rc-sync-server key retire, docs/token-key.md)
  'token.key-version-current': {
    meaning:
      'The key version asked to be retired is the one the server tokenises and enrols devices with (the newest in its token, or the one it last started with).',
    action: 'Rotate first (rc-sync-server key rotate, restart, rc-provision rotate, re-import the cards), then retire the old version.',
  },
  'token.key-version-in-use': {
    meaning:
      'Cards in the registry or entries of the published lists still carry tokens of that key version (or the lists are not yet recomputed after an import), so devices still need it to recognise those cards.',
    action: 'Re-import the cards under the new version and let the server publish the lists (start it); `key retire --json` counts what is left.',
  },
  'token.key-version-unknown': {
    meaning: "Neither the server's token nor the registry knows that key version.",
    action: 'Check the number: rc-sync-server key list shows the versions in the token.',
  },
  'token.key-version-retired': {
    meaning: 'The server was started with a key version that was retired (rc-sync-server key retire): it would tokenise with it and hand it to devices again.',
    action: 'Start with the current version (the newest in the token, or RC_TOKEN_KEY of that version); a retired version is not used again.',
  },
  'db.unavailable': {
    meaning: 'The registry database could not be reached: PostgreSQL refused the connection, or the connection was lost.',
    action:
      'Check that PostgreSQL runs and that the --database URL (host, port, database, user) is right; the server retries nothing on its own, restart it once the database is back.',
  },
  'db.constraint': {
    meaning: 'A write broke a rule of the registry schema (a unique key, a foreign key, NOT NULL or CHECK); nothing of the statement was stored.',
    action: 'Usually a duplicate (the same key twice): the context names the constraint; fix the input and try again.',
  },
  'db.query-failed': {
    meaning: 'The database refused a statement for another reason (syntax, a missing table, an aborted transaction); the SQLSTATE is in the context.',
    action: 'A bug or a registry from another version: report it with the SQLSTATE and the server log.',
  },
  'db.value-out-of-range': {
    meaning:
      'A number read from or given to the database does not fit a JavaScript number exactly (beyond 2^53), or a value of a type the database cannot take was given.',
    action: 'A bug: report it with the server log (the value itself is never logged).',
  },
  'db.pragma-unsupported': {
    meaning: 'A SQLite PRAGMA other than the tuning ones was asked of PostgreSQL, which has no equivalent.',
    action: 'A bug of the PostgreSQL port: report it (docs/postgres.md lists the pragmas that are accepted).',
  },
  'db.bad-spec': {
    meaning: 'The --database value is neither a SQLite file nor a postgres:// or postgresql:// URL (another scheme, or a URL that does not parse).',
    action: 'Leave --database out (DATA/registry.sqlite), give the SQLite file, or a URL such as postgres://rc@db.example/registry.',
  },
  'db.schema-newer': {
    meaning: 'The registry database was migrated by a newer server than this one (its schema_migrations holds a version this server does not know).',
    action: 'Run the newer server, or restore the backup taken before the upgrade.',
  },
  'db.collation-not-bytewise': {
    meaning:
      "The PostgreSQL database's text sorts by a language's collation, not by bytes as the registry needs (its keyset pages and list merges compare text bytewise, as SQLite does).",
    action: "Create the database with CREATE DATABASE … TEMPLATE template0 LC_COLLATE 'C' (docs/postgres.md) and start again.",
  },
};
