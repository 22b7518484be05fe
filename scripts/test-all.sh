#!/usr/bin/env bash
# The README's second quick-start line: install everything the tests need
# (Debian packages included) and run the whole suite. .ci/run runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export npm_config_nodedir=/usr   # build native addons against the system's Node headers (no download)

if [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  # pcscd + vpcd: the real PC/SC stack; libpcsclite-dev: headers for the smartcard binding;
  # mosquitto: the external broker; socat: pty pairs; udev: serialport's port listing;
  # gcc: the TCP_NODELAY shim for pcscd; strace: the durable-ack test traces the server's fsyncs; softhsm2: the card-token key in a PKCS#11 token;
  # fonts-dejavu-core: the reports' PDF font (Cyrillic); poppler-utils: pdftoppm/pdftotext; chromium: HTML reports in a real browser;
  # nats-server: the 3-node clustered broker of test/integration/cluster-sync.test.ts (issue 16);
  # postgresql: the private PostgreSQL 15 the db tests start (test/support/rig/postgres.ts); libpq-dev: headers pg-native's libpq binding builds against.
  apt-get install -y -qq --no-install-recommends \
    pcscd vsmartcard-vpcd libpcsclite-dev mosquitto nats-server socat udev strace softhsm2 postgresql libpq-dev \
    fonts-dejavu-core poppler-utils chromium \
    gcc libc6-dev make g++ python3 >/dev/null
else
  echo "not root: assuming the Debian packages are installed already" >&2
fi

npm ci --no-audit --no-fund
npm run build
npm run typecheck
npm run check   # eslint (with the import boundaries), prettier --check, knip: fail fast, before the long suite
npx vitest run
