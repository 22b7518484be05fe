import { Command } from 'commander';
import { register as registerInit } from './commands/init.js';
import { register as registerShow } from './commands/show.js';
import { register as registerRotate } from './commands/rotate.js';
import { register as registerReset } from './commands/reset.js';
import { register as registerCheck } from './commands/check.js';

// rc-provision: what a technician runs to set up a device. Commands live in provisioning/commands/.
const program = new Command('rc-provision').description('Resident Card device provisioning').showHelpAfterError();
registerInit(program);
registerShow(program);
registerRotate(program);
registerReset(program);
registerCheck(program);

await program.parseAsync(process.argv);
