// One project: its tabs, and the Settings tab (edit, and delete with a confirmation that shows
// what the cascade removes).

import { api, get } from './api.js';
import { contactsTab, conversationsTab } from './inbox.js';
import { kbTab } from './kb.js';
import { agentTab, beaconsTab, formsTab, integrationsTab, widgetTab } from './more.js';
import { projectForm } from './projects.js';
import { button, card, errorSlot, field, h, run } from './ui.js';
import { webhooksTab } from './webhooks.js';

const TABS = [
  ['conversations', 'Conversations', conversationsTab],
  ['contacts', 'Contacts', contactsTab],
  ['kb', 'Knowledge base', kbTab],
  ['widget', 'Widget', widgetTab],
  ['agent', 'Agent', agentTab],
  ['webhooks', 'Webhooks', webhooksTab],
  ['forms', 'Forms', formsTab],
  ['beacons', 'Beacons', beaconsTab],
  ['integrations', 'Integrations', integrationsTab],
  ['settings', 'Settings', settingsTab],
];

export function projectPage(ctx) {
  const [projectId, tabName = 'conversations', itemId = null] = ctx.params;
  const tab = TABS.find(([slug]) => slug === tabName) || TABS[0];
  const title = h('h1', { text: 'Project' });
  const meta = h('p', { class: 'muted mono' });
  const panel = h('section', { class: 'tabpanel', role: 'tabpanel', id: 'tab-panel', 'aria-labelledby': `tab-${tab[0]}` });
  const slot = errorSlot();
  const tabs = h(
    'div',
    { class: 'tabs', role: 'tablist', 'aria-label': 'Project sections' },
    TABS.map(([slug, label]) =>
      h('a', {
        role: 'tab',
        id: `tab-${slug}`,
        class: slug === tab[0] ? 'tab active' : 'tab',
        href: `/dashboard/projects/${projectId}/${slug}`,
        'aria-selected': slug === tab[0] ? 'true' : 'false',
        'aria-controls': 'tab-panel',
        text: label,
      }),
    ),
  );
  run(null, slot, async () => {
    const project = await get(`/orgs/${ctx.me.org.id}/projects/${projectId}`);
    document.title = `${project.name} · rogeriq`;
    title.textContent = project.name;
    meta.textContent = `${project.slug} · ${project.id}`;
    panel.replaceChildren(tab[2]({ ...ctx, project, itemId }));
  });
  document.title = 'Project · rogeriq';
  return h(
    'div',
    {},
    h('p', { class: 'crumbs' }, h('a', { href: '/dashboard/projects', text: 'Projects' }), ' / ', tab[1]),
    title,
    meta,
    slot.el,
    tabs,
    panel,
  );
}

function settingsTab(ctx) {
  const { me, can, project, navigate } = ctx;
  const parts = [];
  if (can('projects', 'write')) {
    parts.push(
      card(
        h('h2', { text: 'Project settings' }),
        projectForm({ me, project, onSaved: (saved) => navigate(`/dashboard/projects/${saved.id}/settings`, { replace: true }) }),
      ),
    );
  } else {
    parts.push(
      card(
        h('h2', { text: 'Project settings' }),
        h('dl', { class: 'facts' },
          h('dt', { text: 'Name' }), h('dd', { text: project.name }),
          h('dt', { text: 'Domain' }), h('dd', { text: project.domain || '—' }),
          h('dt', { text: 'Agent mode' }), h('dd', { text: project.agent_mode })),
      ),
    );
  }
  if (can('projects', 'admin')) {
    parts.push(
      h(
        'section',
        { class: 'card danger-zone' },
        h('h2', { text: 'Delete this project' }),
        h('p', { text: 'Deleting a project removes everything it holds: conversations, contacts, articles, webhooks, forms and more. It cannot be undone.' }),
        button('Delete project', () => deleteDialog(ctx), 'danger'),
      ),
    );
  }
  return h('div', { class: 'stack' }, parts);
}

/** The confirmation: what the cascade removes, with counts, and the name typed to enable Delete. */
function deleteDialog({ me, project, navigate }) {
  const counts = h('ul', { class: 'counts' }, h('li', { class: 'muted', text: 'Counting…' }));
  const typed = h('input', { type: 'text', autocomplete: 'off' });
  const remove = button('Delete', null, 'danger', { disabled: true });
  const slot = errorSlot();
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'delete-title' });
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  typed.addEventListener('input', () => {
    remove.disabled = typed.value !== project.name;
  });
  remove.addEventListener('click', () =>
    run(remove, slot, async () => {
      const result = (await api('DELETE', `/orgs/${me.org.id}/projects/${project.id}`)).data;
      close();
      const removed = Object.entries(result.removed).map(([kind, n]) => `${n} ${kind}`).join(', ');
      navigate('/dashboard/projects', {
        replace: true,
        message: `Project “${project.name}” deleted${removed ? ` with ${removed}` : ''}.`,
      });
    }),
  );
  dialog.append(
    h('h2', { id: 'delete-title', text: `Delete “${project.name}”?` }),
    h('p', { text: 'This deletes the project and everything below, at once and for good:' }),
    counts,
    field('Type the project name to confirm', typed),
    slot.el,
    h('div', { class: 'actions' }, button('Cancel', close), remove),
  );
  dialog.addEventListener('cancel', close);
  document.body.append(dialog);
  dialog.showModal();
  typed.focus();
  run(null, slot, async () => {
    const contents = await get(`/orgs/${me.org.id}/projects/${project.id}/contents`);
    const entries = Object.entries(contents);
    counts.replaceChildren(
      ...(entries.length
        ? entries.map(([kind, n]) => h('li', {}, h('strong', { text: String(n) }), ` ${kind.replace(/_/g, ' ')}`))
        : [h('li', { text: 'The project holds nothing else.' })]),
    );
  });
}
