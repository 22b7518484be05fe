import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { initDevice } from '../../provisioning/ops.js';
import { expectRcError } from '../support/errors.js';
import { RULES, startProvStack, type ProvStack } from '../support/provision-rig.js';

async function* linesOf(text: string): AsyncIterable<string> {
  yield text;
}

/**
 * Issue 14's provisioning bug: rules published under a device-specific name (`rules-bus`,
 * `rules-canteen`, `rules-school-<id>`, as the README describes) must satisfy enrolment,
 * not only the document named `rules`.
 */
describe('enrolment takes the rules published under the device-specific names', () => {
  let stack: ProvStack;
  const dirs: string[] = [];
  const newDir = () => {
    const d = join(mkdtempSync(join(tmpdir(), 'rc-prov-names-')), 'rc-device');
    dirs.push(d);
    return d;
  };
  const all = RULES as { tariff: unknown; school: unknown; canteen: { meals: unknown[] } };

  beforeAll(async () => {
    stack = await startProvStack('embedded');
    stack.server.db.prepare("DELETE FROM configs WHERE name = 'rules'").run();
  });
  afterAll(async () => {
    await stack?.close();
    for (const d of dirs) rmSync(join(d, '..'), { recursive: true, force: true });
  });

  it('with nothing published a canteen is refused with provision.no-rules, and the token stays usable', async () => {
    const t = stack.token('canteen', { school: '7' });
    await expectRcError(initDevice({ server: stack.server.httpUrl, token: t.token, kind: 'canteen', school: '7', dir: newDir() }), ErrorCode.ProvisionNoRules);
    await stack.server.api.setConfig('rules-canteen', { schema: 1, canteen: all.canteen });
    const dir = newDir();
    await initDevice({ server: stack.server.httpUrl, token: t.token, kind: 'canteen', school: '7', dir });
    expect(loadConfigFile(join(dir, 'device.json')).canteen?.meals).toEqual(all.canteen.meals);
  });

  it('rules-bus alone lets a bus be set up, with its tariff in the config', async () => {
    await stack.server.api.setConfig('rules-bus', { schema: 1, tariff: all.tariff });
    const dir = newDir();
    await initDevice({ server: stack.server.httpUrl, token: stack.token('bus', { route: '7' }).token, kind: 'bus', route: '7', dir });
    const cfg = JSON.parse(readFileSync(join(dir, 'device.json'), 'utf8')) as { tariff: { routes: Record<string, unknown> } };
    expect(Object.keys(cfg.tariff.routes)).toEqual(['7', '12']);
  });

  it("rules-school-<id> serves that school's turnstile, not another school's", async () => {
    await stack.server.api.setConfig('rules-school-9', { schema: 1, school: all.school });
    await expectRcError(
      initDevice({ server: stack.server.httpUrl, token: stack.token('turnstile', { school: '8' }).token, kind: 'turnstile', school: '8', dir: newDir() }),
      ErrorCode.ProvisionNoRules,
    );
    const dir = newDir();
    await initDevice({ server: stack.server.httpUrl, token: stack.token('turnstile', { school: '9' }).token, kind: 'turnstile', school: '9', dir });
    expect(loadConfigFile(join(dir, 'device.json')).school?.antiPassback).toBe('hard');
  });

  it('a partner device: unknown partner refused, no partner rules refused with provision.no-rules, then set up with its category and discount rules', async () => {
    const partnerInit = (token: string, dir: string) => initDevice({ server: stack.server.httpUrl, token, kind: 'partner', partner: 'museum-1', dir });
    const t = stack.token('partner');
    await expectRcError(partnerInit(t.token, newDir()), ErrorCode.ProvisionUnknownPartner);
    const csv = ['partner_id,partner_name,category,discount', 'museum-1,Национальный музей,museum,10', 'shop-9,Магазин,shop,5'].join('\n');
    const imported = await stack.server.api.importCsv('partners', linesOf(csv), false);
    expect(imported.report).toMatchObject({ kind: 'partners', rows: 2, applied: 2, rejected: 0 });
    await expectRcError(partnerInit(t.token, newDir()), ErrorCode.ProvisionNoRules);
    await stack.server.api.setConfig('rules-partner', { schema: 1, partners: { categories: { shop: { discountPercent: 5 } } } });
    await expectRcError(partnerInit(t.token, newDir()), ErrorCode.ProvisionNoRules); // no rule for the museum category
    const partners = { categories: { museum: { discountPercent: 10, byBenefit: { pensioner: 50 } } } };
    await stack.server.api.setConfig('rules-partner', { schema: 1, partners });
    const dir = newDir();
    const r = await partnerInit(t.token, dir);
    expect(r.scopes).toEqual(['transit', 'stoplist']);
    const cfg = loadConfigFile(join(dir, 'device.json'));
    expect(cfg.device).toMatchObject({ id: r.deviceId, kind: 'partner', partnerId: 'museum-1', partnerCategory: 'museum' });
    expect(cfg.partners).toEqual(partners);
    expect(stack.server.provisioning.registry.list().find((d) => d.id === r.deviceId)).toMatchObject({ kind: 'partner', partner: 'museum-1', school: null });
  });

  it('a partner import with a bad discount is refused whole', async () => {
    const csv = ['partner_id,partner_name,category,discount', 'theatre-2,Театр,theatre,120'].join('\n');
    const e = await expectRcError(stack.server.api.importCsv('partners', linesOf(csv), false), ErrorCode.ServerImportInvalid);
    expect(JSON.stringify(e.context)).toContain('discount');
  });
});
