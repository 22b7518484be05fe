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
import { bankRoutes } from './bank.js';
import { cabinetRoutes } from './cabinet.js';

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
  ...bankRoutes,
  ...portalRoutes,
  ...cabinetRoutes,
];

/** The route table of the operator listener when the server has no public listener: the public routes (cabinet, portal) served there too. */
export function withPublicOnOperator(routes: readonly Route[]): readonly Route[] {
  return routes.map((r) =>
    r.listeners.includes('public') && !r.listeners.includes('operator') ? { ...r, listeners: [...r.listeners, 'operator' as const] } : r,
  );
}
