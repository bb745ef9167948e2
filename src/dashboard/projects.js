// Projects: the list (searchable by name, slug or domain), and the new-project form.

import { api, get } from './api.js';
import { button, card, errorSlot, field, form, h, run, select, table, time } from './ui.js';

export const AGENT_MODES = [
  ['copilot', 'Copilot — drafts replies as internal notes'],
  ['autopilot', 'Autopilot — replies by itself'],
  ['assist', 'Assist — suggestions only'],
];

export function projectsPage({ me, can, navigate }) {
  document.title = 'Projects · rogeriq';
  const search = h('input', { type: 'search', placeholder: 'Name, slug or domain', autocomplete: 'off' });
  const { el: tableEl, body } = table(['Name', 'Slug', 'Domain', 'Agent mode', 'Created'], 'Projects');
  const slot = errorSlot();
  const empty = h('p', { class: 'empty', hidden: true });
  let projects = [];
  function show() {
    const needle = search.value.trim().toLowerCase();
    const shown = projects.filter((p) =>
      [p.name, p.slug, p.domain || ''].some((text) => text.toLowerCase().includes(needle)),
    );
    body.replaceChildren(
      ...shown.map((p) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: `/dashboard/projects/${p.id}`, class: 'strong', text: p.name })),
          h('td', { class: 'mono', text: p.slug }),
          h('td', { text: p.domain || '—' }),
          h('td', { text: p.agent_mode }),
          h('td', {}, time(p.created_at)),
        ),
      ),
    );
    empty.textContent = projects.length ? 'No project matches the search.' : 'No projects yet.';
    empty.hidden = shown.length > 0;
  }
  search.addEventListener('input', show);
  run(null, slot, async () => {
    projects = await get(`/orgs/${me.org.id}/projects`);
    show();
  });
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'page-head' },
      h('h1', { text: 'Projects' }),
      can('projects', 'write') ? button('New project', () => navigate('/dashboard/projects/new'), 'primary') : null,
    ),
    card(h('div', { class: 'toolbar' }, field('Search projects', search)), slot.el, tableEl, empty),
  );
}

/** The project form: name, domain and agent mode; `project` given, it edits that one. */
export function projectForm({ me, project, onSaved }) {
  const name = h('input', { type: 'text', required: true, maxlength: '100', value: project ? project.name : '' });
  const domain = h('input', { type: 'text', placeholder: 'support.example.com', value: project ? project.domain || '' : '' });
  const mode = select(AGENT_MODES, { value: project ? project.agent_mode : 'copilot' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: project ? 'Save' : 'Create project' });
  const slot = errorSlot();
  const saved = h('span', { class: 'muted', role: 'status' });
  const editor = form(
    { class: 'form', submit, slot },
    async () => {
      saved.textContent = '';
      const path = `/orgs/${me.org.id}/projects`;
      let result;
      if (project) {
        const body = { name: name.value, agent_mode: mode.value, domain: domain.value.trim() || null };
        result = (await api('PATCH', `${path}/${project.id}`, body)).data;
      } else {
        const body = { name: name.value };
        if (domain.value.trim()) body.domain = domain.value.trim();
        result = (await api('POST', path, body)).data;
        if (mode.value !== result.agent_mode) {
          result = (await api('PATCH', `${path}/${result.id}`, { agent_mode: mode.value })).data;
        }
      }
      saved.textContent = 'Saved.';
      onSaved(result);
    },
    field('Name', name),
    field('Domain', domain, 'Optional: the host your support site is served from.'),
    field('Agent mode', mode),
    slot.el,
    h('div', { class: 'actions' }, submit, saved),
  );
  return editor;
}

export function newProjectPage(ctx) {
  document.title = 'New project · rogeriq';
  return h(
    'div',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '/dashboard/projects', text: 'Projects' }), ' / New'),
    h('h1', { text: 'New project' }),
    card(
      projectForm({
        me: ctx.me,
        onSaved: (project) => ctx.navigate(`/dashboard/projects/${project.id}`, { replace: true, message: `Project “${project.name}” created.` }),
      }),
    ),
  );
}
