import { Command } from 'commander';

// rc-device: the runtime on validators, turnstiles and canteen terminals.
// Each command lives in device/commands/<name>.ts and registers itself here.
const program = new Command('rc-device').description('Resident Card device runtime').showHelpAfterError();

await program.parseAsync(process.argv);
