import { Command } from 'commander';

// rc-provision: what a technician runs to set up a device. Commands live in provisioning/commands/.
const program = new Command('rc-provision').description('Resident Card device provisioning').showHelpAfterError();

await program.parseAsync(process.argv);
