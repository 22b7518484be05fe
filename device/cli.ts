import { Command } from 'commander';
import { register as registerReplay } from './commands/replay.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerRun } from './commands/run.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerRead } from './commands/read.js';
import { register as registerVcard } from './commands/vcard.js';

// rc-device: the runtime on validators, turnstiles and canteen terminals.
// Each command lives in device/commands/<name>.ts and registers itself here.
const program = new Command('rc-device').description('Resident Card device runtime').showHelpAfterError();

registerReplay(program);
registerDemo(program);
registerRun(program);
registerStatus(program);
registerRead(program);
registerVcard(program);

await program.parseAsync(process.argv);
