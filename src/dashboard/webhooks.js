// Webhooks: create one (URL and events; its signing secret shown once), and for each its
// recent deliveries, a test delivery and secret rotation.

import { api, get } from './api.js';
import { badge, button, card, checkbox, confirm, errorSlot, field, form, h, run, secretBox, table, time } from './ui.js';

export function webhooksTab({ me, project, can }) {
  const base = `/projects/${project.id}/webhooks`;
  const writable = can('webhooks', 'write');
  const list = h('div', { class: 'stack' });
  const creator = h('div', {});
  const fresh = h('div', {});
  const slot = errorSlot();
  const load = () =>
    run(null, slot, async () => {
      const hooks = await get(base);
      list.replaceChildren(
        ...(hooks.length ? hooks.map((hook) => webhookCard({ base, hook, writable, reload: load })) : [h('p', { class: 'empty', text: 'No webhooks yet.' })]),
      );
    });
  const openCreator = () => {
    const url = h('input', { type: 'url', required: true, placeholder: 'https://example.com/hooks/rogeriq' });
    const boxes = me.webhook_events.map((event) => checkbox(event, { value: event }));
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Create webhook' });
    const formSlot = errorSlot();
    creator.replaceChildren(
      form(
        { class: 'form', submit, slot: formSlot },
        async () => {
          const events = boxes.filter((b) => b.input.checked).map((b) => b.input.value);
          const created = (await api('POST', base, { url: url.value.trim(), events })).data;
          creator.replaceChildren();
          fresh.replaceChildren(secretBox(`Signing secret of ${created.url}`, created.secret));
          load();
        },
        h('h3', { text: 'New webhook' }),
        field('URL', url),
        h('fieldset', { class: 'checks' }, h('legend', { text: 'Events' }), boxes.map((b) => b.el)),
        formSlot.el,
        h('div', { class: 'actions' }, submit, button('Cancel', () => creator.replaceChildren())),
      ),
    );
    url.focus();
  };
  load();
  return card(
    h('div', { class: 'page-head' }, h('h2', { text: 'Webhooks' }), writable ? button('New webhook', openCreator, 'primary') : null),
    creator,
    fresh,
    slot.el,
    list,
  );
}

function webhookCard({ base, hook, writable, reload }) {
  const path = `${base}/${hook.id}`;
  const slot = errorSlot();
  const result = h('div', { role: 'status' });
  const { el: tableEl, body } = table(['Event', 'Status', 'Attempt', 'Response', 'Time'], `Deliveries of ${hook.url}`);
  const deliveries = () =>
    run(null, slot, async () => {
      const rows = await get(`${path}/deliveries`);
      body.replaceChildren(
        ...(rows.length
          ? rows.map((d) =>
              h(
                'tr',
                {},
                h('td', { class: 'mono', text: d.event }),
                h('td', {}, badge(d.status, d.status === 'delivered' ? 'green' : 'red')),
                h('td', { text: String(d.attempt) }),
                h('td', { text: d.status_code === null ? 'no response' : `HTTP ${d.status_code} · ${d.duration_ms} ms` }),
                h('td', {}, time(d.created_at)),
              ),
            )
          : [h('tr', {}, h('td', { colspan: '5', class: 'muted', text: 'No deliveries yet.' }))]),
      );
    });
  const actions = [];
  if (writable) {
    const test = button('Send test', () =>
      run(test, slot, async () => {
        const r = (await api('POST', `${path}/test`)).data;
        const outcome = r.delivered ? `Delivered: HTTP ${r.status_code} in ${r.duration_ms} ms.` : `Not delivered${r.status_code ? `: HTTP ${r.status_code}` : ''}${r.message ? ` (${r.message})` : ''}.`;
        result.replaceChildren(h('p', { class: r.delivered ? 'ok' : 'warn', text: outcome }));
        deliveries();
      }),
    );
    const rotate = button('Rotate secret', async () => {
      const sure = await confirm({
        title: 'Rotate the signing secret?',
        body: 'The current secret stops working at once; receivers need the new one.',
        action: 'Rotate secret',
        variant: 'primary',
      });
      if (!sure) return;
      run(rotate, slot, async () => {
        const r = (await api('POST', `${path}/rotate-secret`)).data;
        result.replaceChildren(secretBox('New signing secret', r.secret));
      });
    });
    const toggle = button(hook.status === 'active' ? 'Disable' : 'Enable', () =>
      run(toggle, slot, async () => {
        await api('PATCH', path, { status: hook.status === 'active' ? 'disabled' : 'active' });
        reload();
      }),
    );
    const remove = button('Delete', async () => {
      const sure = await confirm({ title: 'Delete this webhook?', body: `${hook.url} gets no more events, and its delivery history goes.`, action: 'Delete' });
      if (sure) run(remove, slot, async () => (await api('DELETE', path), reload()));
    });
    actions.push(test, rotate, toggle, remove);
  }
  deliveries();
  return h(
    'article',
    { class: 'webhook' },
    h(
      'div',
      { class: 'webhook-head' },
      h('div', {}, h('p', { class: 'strong mono break', text: hook.url }),
        h('p', { class: 'muted' }, badge(hook.status, hook.status === 'active' ? 'green' : 'neutral'), ` ${hook.events.join(', ')} · ${hook.failure_count} failures · last sent `, time(hook.last_triggered_at))),
      h('div', { class: 'actions' }, actions),
    ),
    slot.el,
    result,
    h('h4', { text: 'Recent deliveries' }),
    tableEl,
  );
}
