import type { Route } from '../route.js';
import { chargingRoutes } from './charging.js';
import { configRoutes } from './config.js';
import { consoleRoutes } from './console.js';
import { enrolRoutes } from './enrol.js';
import { importRoutes } from './import.js';
import { journalRoutes } from './journal.js';
import { notificationRoutes } from './notifications.js';
import { reportRoutes } from './reports.js';
import { serverRoutes } from './server.js';
import { accountRoutes } from './accounts.js';
import { auditRoutes } from './audit.js';
import { opsRoutes } from './ops.js';
import { portalRoutes } from './portal.js';
import { sessionRoutes } from './session.js';

/** The one route table: both listeners are built from it (each route names its listeners). */
export const ROUTES: readonly Route[] = [
  ...serverRoutes,
  ...journalRoutes,
  ...importRoutes,
  ...configRoutes,
  ...chargingRoutes,
  ...enrolRoutes,
  ...reportRoutes,
  ...consoleRoutes,
  ...sessionRoutes,
  ...accountRoutes,
  ...auditRoutes,
  ...opsRoutes,
  ...notificationRoutes,
  ...portalRoutes,
];
