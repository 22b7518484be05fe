import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../device/config/index.js';
import { ErrorCode } from '../../protocol/errors.js';
import { initDevice } from '../../provisioning/ops.js';
import { expectRcError } from '../support/errors.js';
import { RULES, startProvStack, type ProvStack } from '../support/provision-rig.js';

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
});
