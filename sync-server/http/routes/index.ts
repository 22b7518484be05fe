import type { Route } from '../route.js';
import { chargingRoutes } from './charging.js';
import { configRoutes } from './config.js';
import { enrolRoutes } from './enrol.js';
import { importRoutes } from './import.js';
import { journalRoutes } from './journal.js';
import { notificationRoutes } from './notifications.js';
import { reportRoutes } from './reports.js';
import { serverRoutes } from './server.js';

/** The one route table: both listeners are built from it (each route names its listeners). */
export const ROUTES: readonly Route[] = [
  ...serverRoutes,
  ...journalRoutes,
  ...importRoutes,
  ...configRoutes,
  ...chargingRoutes,
  ...enrolRoutes,
  ...reportRoutes,
  ...notificationRoutes,
];
