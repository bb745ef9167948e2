// API keys: the organisation's keys (never their secrets), a new key with its scopes (its
// secret shown once), and revocation with a confirmation.

import { api, get } from './api.js';
import { badge, button, card, checkbox, confirm, errorSlot, field, form, h, run, secretBox, table, time } from './ui.js';

export function keysPage({ me, can }) {
  document.title = 'API keys · rogeriq';
  const base = `/orgs/${me.org.id}/keys`;
  const admin = can('keys', 'admin');
  const creator = h('div', {});
  const fresh = h('div', {});
  const slot = errorSlot();
  const { el: tableEl, body } = table(['Name', 'Key', 'Scopes', 'Created', 'Last used', 'Status', ''], 'API keys');
  const load = () =>
    run(null, slot, async () => {
      const keys = await get(base);
      body.replaceChildren(
        ...keys.reverse().map((key) => {
          const revoked = Boolean(key.revoked_at);
          const expired = !revoked && key.expires_at && new Date(key.expires_at) <= new Date();
          const status = revoked ? badge('revoked', 'red') : expired ? badge('expired', 'amber') : badge('active', 'green');
          let revoke = null;
          if (admin && !revoked) {
            revoke = button('Revoke', async () => {
              const yours = key.id === me.key.id ? ' It is the key of this session: you will be signed out.' : '';
              const sure = await confirm({
                title: `Revoke “${key.name}”?`,
                body: `Requests with this key will be refused from now on.${yours}`,
                action: 'Revoke',
              });
              if (sure) run(revoke, slot, async () => (await api('DELETE', `${base}/${key.id}`), load()));
            }, 'ghost');
          }
          return h(
            'tr',
            { class: revoked ? 'archived' : null },
            h('td', {}, h('span', { class: 'strong', text: key.name }), key.id === me.key.id ? badge('this session', 'blue') : null),
            h('td', { class: 'mono' }, h('div', { text: `${key.prefix}…` }), h('div', { class: 'muted small', text: key.id })),
            h('td', {}, h('div', { class: 'scopes' }, key.scopes.map((s) => h('code', { text: s })))),
            h('td', {}, time(key.created_at)),
            h('td', {}, time(key.last_used_at)),
            h('td', {}, status),
            h('td', { class: 'row-actions' }, revoke),
          );
        }),
      );
    });
  const openCreator = () => {
    const name = h('input', { type: 'text', required: true, maxlength: '100' });
    const boxes = me.scopes.map((scope) => checkbox(scope, { value: scope }));
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Create key' });
    const formSlot = errorSlot();
    creator.replaceChildren(
      form(
        { class: 'form', submit, slot: formSlot },
        async () => {
          const scopes = boxes.filter((b) => b.input.checked).map((b) => b.input.value);
          const created = (await api('POST', base, { name: name.value, scopes })).data;
          creator.replaceChildren();
          fresh.replaceChildren(secretBox(`Secret of “${created.name}”`, created.key));
          load();
        },
        h('h2', { text: 'New key' }),
        field('Key name', name),
        h(
          'fieldset',
          { class: 'checks checks-scopes' },
          h('legend', { text: 'Scopes' }),
          h('p', { class: 'hint', text: 'read, write and admin cover every resource (the audit log needs audit:read). A key cannot grant what this key lacks.' }),
          boxes.map((b) => b.el),
        ),
        formSlot.el,
        h('div', { class: 'actions' }, submit, button('Cancel', () => creator.replaceChildren())),
      ),
    );
    name.focus();
  };
  if (can('keys', 'read')) load();
  else slot.show({ message: 'This key cannot list API keys (it lacks keys:read).' });
  return h(
    'div',
    {},
    h('div', { class: 'page-head' }, h('h1', { text: 'API keys' }), admin ? button('New key', openCreator, 'primary') : null),
    creator,
    fresh,
    card(slot.el, tableEl),
  );
}
