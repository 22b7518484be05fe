import type { Command } from 'commander';
import { DEFAULT_DIR } from '../device-dir.js';
import { initDevice } from '../ops.js';
import { DEVICE_KINDS, DeviceKind, GATE_DIRECTIONS, GateDirection } from '../../protocol/ids.js';
import { fail } from './common.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('give this device its identity: keys made here, one-time token, config for rc-device run')
    .requiredOption('--server <url>', 'the sync-server, e.g. http://10.0.0.5:7300')
    .requiredOption('--enrol-token <token>', 'one-time token from the operator (rc-sync-server enrol-token create)')
    .requiredOption('--kind <kind>', DEVICE_KINDS.join(' | '))
    .option('--route <r>', 'bus: the route it serves')
    .option('--vehicle <v>', 'bus: the vehicle id')
    .option('--school <id>', 'turnstile / canteen: the school')
    .option('--direction <d>', `turnstile: ${GATE_DIRECTIONS.join(' | ')}`)
    .option('--partner <id>', 'partner: the partner id (imported on the server)')
    .option('--reader <name>', 'PC/SC reader name (prefix); all readers when absent')
    .option('--turnstile-port <path>', 'serial port of the turnstile controller (rcp1)')
    .option('--display-port <path>', 'serial port of the validator display (rcp1)')
    .option('--console', 'a console peripheral (prints to the terminal) instead of serial hardware')
    .option('--time-zone <tz>', 'IANA time zone', 'Europe/Moscow')
    .option('--dir <dir>', 'device directory', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .option(
      '--pkcs11-library <path>',
      "the device's PKCS#11 module (SAM / secure element; SoftHSM2 in tests): the card-token key is put into its token, wrapped",
    )
    .option('--pkcs11-token <label>', 'label of that token')
    .option('--pkcs11-pin-file <file>', 'file with the user PIN, mode 0600 (else RC_PKCS11_PIN at run time)')
    .action(
      async (o: {
        server: string;
        enrolToken: string;
        kind: string;
        route?: string;
        vehicle?: string;
        school?: string;
        direction?: string;
        partner?: string;
        reader?: string;
        turnstilePort?: string;
        displayPort?: string;
        console?: boolean;
        timeZone: string;
        dir: string;
        json?: boolean;
        pkcs11Library?: string;
        pkcs11Token?: string;
        pkcs11PinFile?: string;
      }) => {
        try {
          if (!o.pkcs11Library !== !o.pkcs11Token) throw new RcError(ErrorCode.InputInvalid, '--pkcs11-library and --pkcs11-token go together');
          const kind = DeviceKind.safeParse(o.kind);
          if (!kind.success) throw new RcError(ErrorCode.InputInvalid, `--kind must be bus, turnstile or canteen (or partner), not "${o.kind}"`);
          const direction = o.direction === undefined ? undefined : GateDirection.safeParse(o.direction);
          if (direction && !direction.success)
            throw new RcError(ErrorCode.InputInvalid, `--direction must be one of ${GATE_DIRECTIONS.join(', ')}, not "${o.direction}"`);
          const r = await initDevice({
            server: o.server,
            token: o.enrolToken,
            kind: kind.data,
            dir: o.dir,
            timeZone: o.timeZone,
            ...(o.route ? { route: o.route } : {}),
            ...(o.vehicle ? { vehicle: o.vehicle } : {}),
            ...(o.school ? { school: o.school } : {}),
            ...(direction?.success ? { direction: direction.data } : {}),
            ...(o.partner ? { partner: o.partner } : {}),
            ...(o.reader ? { reader: o.reader } : {}),
            ...(o.turnstilePort ? { turnstilePort: o.turnstilePort } : {}),
            ...(o.displayPort ? { displayPort: o.displayPort } : {}),
            ...(o.console ? { console: true } : {}),
            ...(o.pkcs11Library && o.pkcs11Token
              ? { pkcs11: { library: o.pkcs11Library, tokenLabel: o.pkcs11Token, ...(o.pkcs11PinFile ? { pinFile: o.pkcs11PinFile } : {}) } }
              : {}),
          });
          if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
          else
            process.stdout.write(
              `device ${r.deviceId} provisioned in ${r.dir}\n  broker ${r.brokerUrl}, lists ${r.scopes.join(', ')}\n  next: rc-provision check --dir ${r.dir}; then rc-device run --config ${r.configFile}\n`,
            );
        } catch (e) {
          fail(e, o.json === true);
        }
      },
    );
}
