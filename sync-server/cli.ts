import { Command } from 'commander';
import { register as registerStart } from './commands/start.js';
import { register as registerImport } from './commands/import.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerJournal } from './commands/journal.js';
import { register as registerConfig } from './commands/config.js';
import { register as registerCharging } from './commands/charging.js';
import { register as registerEnrolToken } from './commands/enrol-token.js';
import { register as registerDevice } from './commands/device.js';
import { register as registerReport } from './commands/report.js';
import { register as registerKey } from './commands/key.js';
import { register as registerAccounts } from './commands/accounts.js';
import { addCredentialOptions } from './commands/client.js';
import { register as registerTls } from './commands/tls.js';
import { register as registerNotifications } from './commands/notifications.js';
import { register as registerIdentities } from './commands/identities.js';

// rc-sync-server: the operator's server. Commands live in sync-server/commands/.
const program = new Command('rc-sync-server').description('Resident Card sync-server').showHelpAfterError();
registerStart(program);
registerImport(program);
registerStatus(program);
registerJournal(program);
registerConfig(program);
registerCharging(program);
registerEnrolToken(program);
registerDevice(program);
registerReport(program);
registerKey(program);
registerAccounts(program);
// every command that calls the server takes --token-file and --data (its API token); local commands take --data only
addCredentialOptions(program);
registerTls(program);
registerNotifications(program);
registerIdentities(program);

await program.parseAsync(process.argv);
