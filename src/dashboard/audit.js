// The audit log: newest first, filtered by action and by actor (a key's name or id), paged with
// the API's cursor.

import { api, get, query } from './api.js';
import { card, errorSlot, field, h, pager, select, table, time } from './ui.js';

const ACTIONS = [
  'project.created', 'project.updated', 'project.deleted',
  'api_key.created', 'api_key.revoked',
  'conversation.created', 'conversation.updated', 'message.created',
  'contact.created', 'contact.updated',
  'kb_article.created', 'kb_article.updated', 'kb_article.published', 'kb_article.deleted',
  'webhook.created', 'webhook.updated', 'webhook.deleted',
  'widget_config.updated', 'agent_settings.updated',
  'form.created', 'form.updated', 'form.archived', 'form.unarchived',
  'beacon.created', 'beacon.updated', 'beacon.archived', 'beacon.unarchived',
  'integration.installed', 'integration.updated', 'integration.disconnected',
  'org.created', 'org.updated',
];

export function auditPage({ me, can }) {
  document.title = 'Audit log · rogeriq';
  const action = select([['', 'All actions'], ...ACTIONS.map((a) => [a, a])]);
  const actor = h('input', { type: 'text', placeholder: 'Key name or key_…', autocomplete: 'off' });
  const slot = errorSlot();
  const names = new Map();
  const { el: tableEl, body } = table(['Time', 'Actor', 'Action', 'Target'], 'Audit log, newest first');
  const actorCell = (entry) => {
    if (entry.actor === 'master') return h('span', { class: 'strong', text: 'Master key' });
    const id = entry.api_key_id || '';
    return h('span', {}, h('span', { class: 'strong', text: names.get(id) || 'API key' }), h('div', { class: 'muted small mono', text: id }));
  };
  const row = (entry) =>
    h(
      'tr',
      {},
      h('td', {}, time(entry.created_at)),
      h('td', {}, actorCell(entry)),
      h('td', {}, h('code', { text: entry.action })),
      h('td', { class: 'mono small' }, h('div', { text: entry.target_id }), entry.project_id && entry.project_id !== entry.target_id ? h('div', { class: 'muted', text: entry.project_id }) : null),
    );
  /** The key id the Actor box names: an id as typed, else the key of that name. */
  const actorId = () => {
    const typed = actor.value.trim();
    if (!typed || typed.startsWith('key_')) return typed;
    for (const [id, name] of names) if (name.toLowerCase() === typed.toLowerCase()) return id;
    return 'key_unknown00000';
  };
  const load = (cursor) =>
    api('GET', `/orgs/${me.org.id}/audit-log${query({ action: action.value, api_key_id: actorId(), cursor, limit: 25 })}`);
  const start = async () => {
    if (can('keys', 'read')) {
      try {
        for (const key of await get(`/orgs/${me.org.id}/keys`)) names.set(key.id, key.name);
      } catch (error) {
        slot.show(error);
      }
    }
    return pager(body, load, row);
  };
  const holder = h('div', {});
  if (!can('audit', 'read')) {
    slot.show({ message: 'This key cannot read the audit log (it needs audit:read or admin).' });
  } else {
    start().then((listing) => {
      holder.replaceChildren(listing.el);
      action.addEventListener('change', () => listing.reload());
      actor.addEventListener('change', () => listing.reload());
    });
  }
  return h(
    'div',
    {},
    h('h1', { text: 'Audit log' }),
    card(
      h('div', { class: 'toolbar' }, field('Action', action), field('Actor', actor, 'A key’s name or id; Enter applies it.')),
      slot.el,
      tableEl,
      holder,
    ),
  );
}
