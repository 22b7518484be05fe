/// <reference lib="dom" />
import type { EnrolQrAnswer } from '../../../../protocol/console-api.js';
import type { z } from 'zod';
import { api, errorBox } from '../api.js';
import { field, fmtTime, h } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

type Qr = z.infer<typeof EnrolQrAnswer>;

export function enrolPage({ main }: PageContext): void {
  const kind = h(
    'select',
    { name: 'kind', 'data-test': 'enrol-kind' },
    ['bus', 'turnstile', 'canteen'].map((k) => h('option', { value: k }, k)),
  );
  const school = h('input', { name: 'school', 'data-test': 'enrol-school' });
  const route = h('input', { name: 'route', 'data-test': 'enrol-route' });
  const ttl = h('input', { name: 'ttl', type: 'number', min: 1, value: 60, class: 'short' });
  const out = h('div', {});
  const form = h(
    'form',
    { class: 'card' },
    field(t('enrol.kind'), kind),
    field(t('enrol.school'), school),
    field(t('enrol.route'), route),
    field(t('enrol.ttl'), ttl),
    h('button', { type: 'submit', 'data-test': 'enrol-create' }, t('enrol.create')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = {
      kind: kind.value,
      ...(school.value ? { school: school.value } : {}),
      ...(route.value ? { route: route.value } : {}),
      ttlSec: Math.max(1, Number(ttl.value) || 60) * 60,
    };
    api<Qr>('POST', '/v1/console/enrol-tokens', body)
      .then((q) => {
        // the SVG is made by the server (qrcode): parsed as an image, not inserted as markup
        const svg = new DOMParser().parseFromString(q.qrSvg, 'image/svg+xml').documentElement;
        out.replaceChildren(
          h(
            'div',
            { class: 'card qr', 'data-test': 'enrol-qr' },
            h('div', { class: 'qr-img' }, document.importNode(svg, true)),
            h('p', {}, t('enrol.token'), ': ', h('code', { 'data-test': 'enrol-token' }, q.token)),
            h('p', {}, t('enrol.expires'), ': ', h('span', { 'data-test': 'enrol-expires' }, fmtTime(q.expiresAt))),
          ),
        );
      })
      .catch((err: unknown) => out.replaceChildren(errorBox(err)));
  });
  main.append(h('h2', {}, t('nav.enrol')), form, out);
}
