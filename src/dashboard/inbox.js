// The inbox: conversations (filtered by status, each opened with its messages, a reply box and
// close / reopen) and contacts.

import { api, query } from './api.js';
import { badge, button, card, errorSlot, field, form, h, pager, run, select, table, time } from './ui.js';

const STATUSES = [
  ['', 'All statuses'],
  ['open', 'Open'],
  ['snoozed', 'Snoozed'],
  ['resolved', 'Resolved'],
  ['closed', 'Closed'],
];
const TONES = { open: 'green', snoozed: 'amber', resolved: 'blue', closed: 'neutral' };

export function conversationsTab({ project, itemId, can }) {
  const base = `/projects/${project.id}`;
  const status = select(STATUSES);
  const list = h('ul', { class: 'conv-list' });
  const detail = h('div', { class: 'conv-detail' });
  let listing = null;
  const open = (conversation) => {
    for (const item of list.querySelectorAll('[aria-current]')) item.removeAttribute('aria-current');
    const link = list.querySelector(`[data-id="${conversation.id}"]`);
    if (link) link.setAttribute('aria-current', 'true');
    history.replaceState(null, '', `/dashboard/projects/${project.id}/conversations/${conversation.id}`);
    detail.replaceChildren(conversationView({ base, id: conversation.id, can, onChange: () => listing.reload() }));
  };
  const row = (c) =>
    h(
      'li',
      {},
      h(
        'a',
        {
          class: 'conv-item',
          href: `/dashboard/projects/${project.id}/conversations/${c.id}`,
          'data-id': c.id,
          onclick: (event) => {
            event.preventDefault();
            open(c);
          },
        },
        h('span', { class: 'conv-subject', text: c.subject || 'No subject' }),
        h('span', { class: 'conv-meta' }, badge(c.status, TONES[c.status]), ' ', c.channel, ' · ', time(c.updated_at)),
      ),
    );
  const load = (cursor) => api('GET', `${base}/conversations${query({ status: status.value, cursor, limit: 25 })}`);
  listing = pager(list, load, row);
  status.addEventListener('change', () => listing.reload());
  if (itemId) detail.replaceChildren(conversationView({ base, id: itemId, can, onChange: () => listing.reload() }));
  else detail.replaceChildren(h('p', { class: 'empty', text: 'Choose a conversation to read it.' }));
  return h(
    'div',
    { class: 'inbox' },
    card(h('div', { class: 'toolbar' }, field('Status', status)), list, listing.el),
    card(detail),
  );
}

/** One conversation: its messages in order, the reply box, and close / reopen. */
function conversationView({ base, id, can, onChange }) {
  const path = `${base}/conversations/${id}`;
  const title = h('h2', { text: 'Conversation' });
  const facts = h('p', { class: 'muted' });
  const actions = h('div', { class: 'actions' });
  const messages = h('ol', { class: 'messages', 'aria-label': 'Messages' });
  const slot = errorSlot();
  const el = h('div', {}, title, facts, actions, slot.el, messages);
  const show = (c) => {
    title.textContent = c.subject || 'No subject';
    facts.replaceChildren(badge(c.status, TONES[c.status]), ` ${c.channel} · priority ${c.priority} · opened `, time(c.created_at));
    actions.replaceChildren();
    if (can('conversations', 'write')) {
      const closed = c.status === 'closed' || c.status === 'resolved';
      const toggle = button(closed ? 'Reopen' : 'Close', () =>
        run(toggle, slot, async () => {
          show((await api('PATCH', path, { status: closed ? 'open' : 'closed' })).data);
          onChange();
        }),
      );
      actions.append(toggle);
    }
  };
  const row = (m) =>
    h(
      'li',
      { class: `message message-${m.sender_type}${m.is_internal ? ' message-internal' : ''}` },
      h('div', { class: 'message-head' }, h('strong', { text: m.sender_type }), m.is_internal ? badge('internal note', 'amber') : null, time(m.created_at)),
      h('div', { class: 'message-body', text: m.content }),
    );
  run(null, slot, async () => show((await api('GET', path)).data));
  const listing = pager(messages, (cursor) => api('GET', `${path}/messages${query({ cursor })}`), row);
  el.append(listing.el);
  if (can('messages', 'write')) {
    const reply = h('textarea', { rows: '3', required: true });
    const send = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Send' });
    const replySlot = errorSlot();
    el.append(
      form(
        { class: 'reply', submit: send, slot: replySlot },
        async () => {
          const message = (await api('POST', `${path}/messages`, { content: reply.value, is_internal: false })).data;
          messages.append(row(message));
          reply.value = '';
          onChange();
        },
        field('Reply', reply),
        replySlot.el,
        h('div', { class: 'actions' }, send),
      ),
    );
  }
  return el;
}

export function contactsTab({ project }) {
  const base = `/projects/${project.id}/contacts`;
  const search = h('input', { type: 'search', placeholder: 'Name or email', autocomplete: 'off' });
  const { el: tableEl, body } = table(['Name', 'Email', 'Company', 'External id', 'Created'], 'Contacts');
  const row = (c) =>
    h(
      'tr',
      {},
      h('td', { text: c.name || '—' }),
      h('td', { text: c.email || '—' }),
      h('td', { text: c.company || '—' }),
      h('td', { class: 'mono', text: c.external_id || '—' }),
      h('td', {}, time(c.created_at)),
    );
  const listing = pager(body, (cursor) => api('GET', `${base}${query({ q: search.value.trim(), cursor, limit: 25 })}`), row);
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => listing.reload(), 250);
  });
  return card(h('div', { class: 'toolbar' }, field('Search contacts', search)), tableEl, listing.el);
}
