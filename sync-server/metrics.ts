import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Charger } from './charging.js';
import { currentVersions, type Db } from './registry.js';

/**
 * Prometheus metrics of one running server (GET /metrics, issue 12 item 5), in its own registry (not
 * prom-client's global one, so two servers in one process, as in the tests, do not mix):
 *  - rc_taps_ingested_total: journal entries stored from devices;
 *  - rc_devices_online: devices whose last status said online;
 *  - rc_list_version{scope}: current version of each published list;
 *  - rc_import_duration_seconds{kind}: CSV imports, parse to publish;
 *  - rc_charge_outcomes_total{outcome}: charge attempts (charged, declined, error);
 *  - the default process metrics (rc_process_…, rc_nodejs_…).
 * Gauges read the registry when scraped.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly taps: Counter;
  readonly imports: Histogram<'kind'>;
  readonly charges: Counter<'outcome'>;

  constructor(db: Db) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rc_' });
    this.taps = new Counter({ name: 'rc_taps_ingested_total', help: 'journal entries (taps) stored from devices', registers });
    this.imports = new Histogram({
      name: 'rc_import_duration_seconds',
      help: 'CSV import duration, parse to publish',
      labelNames: ['kind'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 180, 600],
      registers,
    });
    this.charges = new Counter({ name: 'rc_charge_outcomes_total', help: 'charge attempts by outcome', labelNames: ['outcome'], registers });
    new Gauge({
      name: 'rc_devices_online',
      help: 'devices whose last status message said online',
      registers,
      collect() {
        this.set((db.prepare('SELECT count(*) AS n FROM devices WHERE online = 1').get() as { n: number }).n);
      },
    });
    new Gauge({
      name: 'rc_list_version',
      help: 'current version of each published list',
      labelNames: ['scope'],
      registers,
      collect() {
        this.reset();
        for (const [scope, v] of Object.entries(currentVersions(db))) this.set({ scope }, v);
      },
    });
  }

  /** The exposition text and its content type. */
  async expose(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** The charger, its outcomes counted (a throw is an `error`: the queue retries it). */
  countCharges(c: Charger): Charger {
    return {
      charge: async (req) => {
        try {
          const r = await c.charge(req);
          this.charges.inc({ outcome: r.ok ? 'charged' : 'declined' });
          return r;
        } catch (e) {
          this.charges.inc({ outcome: 'error' });
          throw e;
        }
      },
    };
  }
}
