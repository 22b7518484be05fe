/// <reference lib="dom" />
import type { DeviceDetail } from '../../../../protocol/console-api.js';
import { api, errorBox } from '../api.js';
import { fmtTime, h, rub, table } from '../dom.js';
import { t, tk } from '../i18n/index.js';
import type { PageContext } from '../main.js';
import { mayOpen } from '../session.js';

/** A confirm dialog (<dialog>): resolves true on confirm. */
export function confirmDialog(text: string): Promise<boolean> {
  return new Promise((resolve) => {
    const dlg = h('dialog', { 'data-test': 'confirm' });
    const close = (v: boolean) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    dlg.append(
      h('p', {}, text),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'button', onclick: () => close(false) }, t('common.cancel')),
        h('button', { type: 'button', class: 'danger', 'data-test': 'confirm-yes', onclick: () => close(true) }, t('common.confirm')),
      ),
    );
    document.body.append(dlg);
    dlg.showModal();
  });
}

export async function deviceDetailPage({ main, arg, user }: PageContext): Promise<void> {
  const id = arg ?? '';
  const d = await api<DeviceDetail>('GET', `/v1/console/devices/${encodeURIComponent(id)}`);
  const dev = d.device;
  const state = dev.revokedAt ? 'revoked' : dev.online ? 'online' : 'offline';
  const out = h('div', {});
  const canRevoke = mayOpen(user, 'imports') && !dev.revokedAt; // writers (admin, operator)
  main.append(
    h('h2', {}, `${t('device.title')} ${dev.id}`),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, t('col.kind')),
      h('dd', {}, dev.kind ?? '—'),
      h('dt', {}, t('col.where')),
      h('dd', {}, dev.school ?? dev.route ?? '—'),
      h('dt', {}, t('col.state')),
      h('dd', { 'data-test': 'device-state' }, h('span', { class: `dot ${state}` }), tk(`state.${state}`)),
      h('dt', {}, t('col.lastSeen')),
      h('dd', {}, fmtTime(dev.lastSeen)),
      h('dt', {}, t('col.lists')),
      h(
        'dd',
        {},
        Object.entries(dev.lists)
          .map(([s, v]) => `${s} ${v.device}/${v.current}`)
          .join(', ') || '—',
      ),
      h('dt', {}, t('col.backlog')),
      h('dd', {}, dev.backlog),
      h('dt', {}, t('col.alarms')),
      h('dd', {}, dev.alarms.map((a) => tk(`alarm.${a}`)).join(', ') || '—'),
    ),
    canRevoke
      ? h(
          'button',
          {
            type: 'button',
            class: 'danger',
            'data-test': 'revoke',
            onclick: async () => {
              if (!(await confirmDialog(t('device.revokeConfirm')))) return;
              try {
                await api('POST', `/v1/devices/${encodeURIComponent(dev.id)}/revoke`, {});
                out.replaceChildren(h('p', { class: 'ok', 'data-test': 'revoked' }, t('device.revoked')));
              } catch (e) {
                out.replaceChildren(errorBox(e));
              }
            },
          },
          t('device.revoke'),
        )
      : '',
    out,
    h('h3', {}, t('device.history')),
    table(
      [t('col.at'), t('col.state'), t('col.backlog'), t('col.lists'), t('col.reader')],
      d.history.map((s) => [
        fmtTime(s.at),
        tk(`state.${s.online ? 'online' : 'offline'}`),
        s.backlog,
        Object.entries(s.lists)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        s.reader ?? '—',
      ]),
    ),
    h('h3', {}, t('device.journal')),
    table(
      [t('col.seq'), t('col.time'), t('col.token'), t('col.result'), t('col.reason'), t('col.fare')],
      d.journal.map((j) => [j.seq, fmtTime(j.time), j.token ? `${j.token.slice(0, 8)}…` : '—', j.result, j.reason, rub(j.fareKopecks)]),
    ),
  );
}
