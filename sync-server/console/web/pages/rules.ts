/// <reference lib="dom" />
import type { ConfigDoc } from '../../../../protocol/console-api.js';
import { ApiError, api, errorBox } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n/index.js';
import type { PageContext } from '../main.js';

/** A line diff (longest common subsequence): ' ' kept, '-' only in a, '+' only in b. */
export function lineDiff(a: string[], b: string[]): [' ' | '-' | '+', string][] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: [' ' | '-' | '+', string][] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push([' ', a[i]!]);
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push(['-', a[i++]!]);
    else out.push(['+', b[j++]!]);
  }
  while (i < n) out.push(['-', a[i++]!]);
  while (j < m) out.push(['+', b[j++]!]);
  return out;
}

export async function rulesPage({ main, arg }: PageContext): Promise<void> {
  const name = h('input', { name: 'name', value: arg ?? 'rules', pattern: '[a-z0-9_-]{1,64}', 'data-test': 'rules-name' });
  const text = h('textarea', { rows: 24, spellcheck: false, 'data-test': 'rules-text', class: 'code' });
  const out = h('div', { 'data-test': 'rules-out' });
  let current: ConfigDoc | null = null;

  const load = async () => {
    out.replaceChildren();
    try {
      current = await api<ConfigDoc>('GET', `/v1/config/${encodeURIComponent(name.value)}`);
      text.value = JSON.stringify(current.rules, null, 2);
      out.append(h('p', {}, `${t('lists.version')} ${current.version}`));
    } catch (e) {
      current = null;
      if (e instanceof ApiError && e.status === 404) text.value = '';
      out.append(errorBox(e));
    }
  };
  /** The edited text as JSON, or a coded error shown (nothing sent). */
  const parsed = (): { ok: true; rules: unknown } | { ok: false } => {
    try {
      return { ok: true, rules: JSON.parse(text.value) as unknown };
    } catch (e) {
      out.replaceChildren(errorBox(new ApiError(0, 'config.invalid', `${t('rules.notJson')}: ${(e as Error).message}`)));
      return { ok: false };
    }
  };
  const validate = async (): Promise<unknown> => {
    const p = parsed();
    if (!p.ok) return undefined;
    try {
      await api('POST', '/v1/config/validate', { name: name.value, rules: p.rules });
      return p.rules;
    } catch (e) {
      out.replaceChildren(errorBox(e));
      return undefined;
    }
  };
  const diff = () => {
    const p = parsed();
    if (!p.ok) return;
    const before = current ? JSON.stringify(current.rules, null, 2).split('\n') : [];
    const after = JSON.stringify(p.rules, null, 2).split('\n');
    const d = lineDiff(before, after);
    const changed = d.some(([k]) => k !== ' ');
    out.replaceChildren(
      changed
        ? h(
            'pre',
            { class: 'diff', 'data-test': 'rules-diff' },
            d
              .filter(([k], i) => k !== ' ' || d.slice(Math.max(0, i - 2), i + 3).some(([x]) => x !== ' '))
              .map(([k, line]) => h('span', { class: k === '+' ? 'add' : k === '-' ? 'del' : 'same' }, `${k} ${line}\n`)),
          )
        : h('p', {}, t('rules.noChanges')),
    );
  };
  const btn = (label: string, test: string, f: () => void | Promise<void>, cls?: string) =>
    h('button', { type: 'button', 'data-test': test, class: cls ?? null, onclick: () => void f() }, label);

  main.append(
    h('h2', {}, t('nav.rules')),
    h('div', { class: 'toolbar' }, field(t('rules.name'), name), btn(t('rules.load'), 'rules-load', load)),
    text,
    h(
      'div',
      { class: 'toolbar' },
      btn(t('rules.validate'), 'rules-validate', async () => {
        if ((await validate()) !== undefined) out.replaceChildren(h('p', { class: 'ok', 'data-test': 'rules-valid' }, t('rules.valid')));
      }),
      btn(t('rules.diff'), 'rules-diff-btn', diff),
      btn(
        t('rules.publish'),
        'rules-publish',
        async () => {
          // validated first: an invalid document is never sent for publication
          const rules = await validate();
          if (rules === undefined) return;
          try {
            const a = await api<{ name: string; version: number }>('POST', '/v1/config', { name: name.value, rules });
            out.replaceChildren(h('p', { class: 'ok', 'data-test': 'rules-published' }, `${t('rules.published')} ${a.version}`));
            current = await api<ConfigDoc>('GET', `/v1/config/${encodeURIComponent(name.value)}`);
          } catch (e) {
            out.replaceChildren(errorBox(e));
          }
        },
        'primary',
      ),
    ),
    out,
  );
  await load();
}
