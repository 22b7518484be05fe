import { Command } from 'commander';

// rc-sync-server: the operator's server. Commands live in sync-server/commands/.
const program = new Command('rc-sync-server').description('Resident Card sync-server').showHelpAfterError();

await program.parseAsync(process.argv);
