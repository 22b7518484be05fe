/// <reference lib="dom" />
import type { ImportAnswer, ImportReport } from '../../../../protocol/api.js';
import { ApiError, api, errorBox, uploadCsv } from '../api.js';
import { field, fmtTime, h, table } from '../dom.js';
import { t, tk } from '../i18n/index.js';
import type { PageContext } from '../main.js';

const KINDS = ['cards', 'benefits', 'enrolments', 'stoplist', 'routes'] as const;

interface ImportRun {
  id: string;
  kind: string;
  state: 'running' | 'done' | 'failed';
  rows: number;
  startedAt: string;
  finishedAt?: string;
}

/** The row-by-row report: counts, then every refused row with its line, column and coded reason. */
function reportView(r: ImportReport): HTMLElement {
  return h(
    'div',
    { class: 'report', 'data-test': 'import-report' },
    h(
      'div',
      { class: 'summary' },
      h('div', { class: 'stat' }, h('b', { 'data-test': 'rows' }, r.rows), t('imports.rows')),
      h('div', { class: 'stat ok' }, h('b', { 'data-test': 'applied' }, r.applied), t('imports.applied')),
      h('div', { class: 'stat bad' }, h('b', { 'data-test': 'rejected' }, r.rejected), t('imports.rejected')),
    ),
    r.errors.length
      ? table(
          [t('imports.line'), t('imports.column'), t('imports.reason')],
          r.errors.map((e) => [e.line, e.column, e.reason]),
          { 'data-test': 'import-errors' },
        )
      : null,
  );
}

/** Recent imports, when the server keeps them (GET /v1/imports); nothing when it does not. */
async function recent(host: HTMLElement): Promise<boolean> {
  try {
    const runs = await api<ImportRun[] | { imports: ImportRun[] }>('GET', '/v1/imports');
    const list = Array.isArray(runs) ? runs : runs.imports;
    host.replaceChildren(
      h('h3', {}, t('imports.recent')),
      table(
        [t('imports.kind'), t('col.state'), t('imports.rows'), t('col.at')],
        list.slice(0, 20).map((r) => [tk(`imports.kind.${r.kind}`), r.state, r.rows, fmtTime(r.startedAt)]),
      ),
    );
    return list.some((r) => r.state === 'running');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) host.replaceChildren(errorBox(e));
    return false;
  }
}

export async function importsPage({ main }: PageContext): Promise<void> {
  const kind = h(
    'select',
    { name: 'kind', 'data-test': 'import-kind' },
    KINDS.map((k) => h('option', { value: k }, tk(`imports.kind.${k}`))),
  );
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv', 'data-test': 'import-file' });
  const skip = h('input', { type: 'checkbox', name: 'skipInvalid', 'data-test': 'import-skip' });
  const progress = h('progress', { max: 100, value: 0, hidden: true, 'data-test': 'import-progress' });
  const stage = h('p', { class: 'stage', 'data-test': 'import-stage' });
  const out = h('div', {});
  const runs = h('div', {});
  const button = h('button', { type: 'submit', 'data-test': 'import-upload' }, t('imports.upload'));
  const form = h(
    'form',
    { class: 'card' },
    field(t('imports.kind'), kind),
    field(t('imports.file'), file),
    h('label', { class: 'check' }, skip, t('imports.skipInvalid')),
    button,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    out.replaceChildren();
    const f = file.files?.[0];
    if (!f) {
      out.append(errorBox(new ApiError(0, 'input.invalid', `${t('imports.file')}: ${t('error.missing')}`)));
      return;
    }
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    stage.textContent = t('imports.uploading');
    let poll: ReturnType<typeof setInterval> | null = null;
    uploadCsv<ImportAnswer>(
      kind.value,
      f,
      skip.checked,
      (sent, total) => {
        progress.value = total ? Math.round((sent / total) * 100) : 0;
        stage.textContent = `${t('imports.uploading')}: ${progress.value}%`;
      },
      () => {
        progress.value = 100;
        stage.textContent = t('imports.processing');
        poll = setInterval(() => void recent(runs), 1000);
      },
    )
      .then((a) => {
        stage.textContent = t('imports.done');
        out.append(reportView(a.report));
      })
      .catch((err: unknown) => {
        stage.textContent = '';
        out.append(errorBox(err));
        // a refused file: its report says which rows and why (nothing was imported)
        const rep = err instanceof ApiError ? (err.context?.report as ImportReport | undefined) : undefined;
        if (rep) out.append(reportView(rep));
      })
      .finally(() => {
        if (poll) clearInterval(poll);
        button.disabled = false;
        void recent(runs);
      });
  });
  main.append(h('h2', {}, t('nav.imports')), form, progress, stage, out, runs);
  await recent(runs);
}
