// The simpler tabs, each a form or a list over its API: widget, agent, forms, beacons and
// integrations.

import { api, get } from './api.js';
import { AGENT_MODES } from './projects.js';
import { badge, button, card, checkbox, errorSlot, field, form, h, run, select, table, time } from './ui.js';

/** A form that loads an object, shows its fields and PATCHes what changed. */
function settingsForm({ title, path, writable, fields, intro }) {
  const slot = errorSlot();
  const saved = h('span', { class: 'muted', role: 'status' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save' });
  const body = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
  let controls = [];
  const fill = (data) => {
    controls = fields.map((f) => f.control(data));
    if (!writable) for (const c of controls) c.input.disabled = true;
    body.replaceChildren(...controls.map((c) => c.el));
  };
  run(null, slot, async () => fill(await get(path)));
  return card(
    form(
      { class: 'form', submit, slot },
      async () => {
        saved.textContent = '';
        const change = {};
        fields.forEach((f, i) => f.read(controls[i].input, change));
        fill((await api('PATCH', path, change)).data);
        saved.textContent = 'Saved.';
      },
      h('h2', { text: title }),
      intro || null,
      body,
      slot.el,
      writable ? h('div', { class: 'actions' }, submit, saved) : null,
    ),
  );
}

const text = (name, label, hint) => ({
  control: (data) => {
    const input = h('input', { type: 'text', value: data[name] ?? '' });
    return { input, el: field(label, input, hint) };
  },
  read: (input, change) => {
    change[name] = input.value;
  },
});
const choice = (name, label, options) => ({
  control: (data) => {
    const input = select(options, { value: data[name] });
    return { input, el: field(label, input) };
  },
  read: (input, change) => {
    change[name] = input.value;
  },
});
const flag = (name, label) => ({
  control: (data) => checkbox(label, { checked: data[name] }),
  read: (input, change) => {
    change[name] = input.checked;
  },
});
const pairs = (values) => values.map((v) => [v, v]);

export function widgetTab({ project, can }) {
  return settingsForm({
    title: 'Chat widget',
    path: `/projects/${project.id}/widget/config`,
    writable: can('widget', 'write'),
    fields: [
      flag('enabled', 'Enabled'),
      choice('position', 'Position', pairs(['bottom-right', 'bottom-left'])),
      text('color', 'Color', 'A hex colour such as #F26B3A.'),
      text('welcome_message', 'Welcome message'),
      choice('theme', 'Theme', pairs(['light', 'dark', 'auto'])),
      text('locale', 'Locale', 'Two letters, such as en or fr.'),
      flag('show_branding', 'Show “Powered by RogerIQ”'),
    ],
  });
}

export function agentTab({ project, can }) {
  const status = h('dl', { class: 'facts' });
  const slot = errorSlot();
  run(null, slot, async () => {
    const s = await get(`/projects/${project.id}/agent/status`);
    const u = s.usage_this_month;
    status.replaceChildren(
      h('dt', { text: 'Enabled' }), h('dd', { text: s.enabled ? 'yes' : 'no' }),
      h('dt', { text: 'Mode' }), h('dd', { text: s.mode }),
      h('dt', { text: 'Model' }), h('dd', { class: 'mono', text: s.model }),
      h('dt', { text: 'This month' }), h('dd', { text: `${u.calls} calls · ${u.input_tokens + u.output_tokens} tokens · $${u.cost_usd.toFixed(2)}` }),
    );
  });
  const threshold = {
    control: (data) => {
      const value = data.settings && data.settings.confidence_threshold;
      const input = h('input', { type: 'number', min: '0', max: '1', step: '0.05', value: value ?? '' });
      return { input, el: field('Confidence threshold', input, 'Replies less certain than this are held for review (0 to 1).') };
    },
    read: (input, change) => {
      if (input.value !== '') change.confidence_threshold = Number(input.value);
    },
  };
  const model = {
    control: (data) => {
      const input = h('input', { type: 'text', value: data.ai_model ?? '', placeholder: 'anthropic/claude-sonnet-4' });
      return { input, el: field('AI model', input, 'Empty: the server’s default model.') };
    },
    read: (input, change) => {
      if (input.value.trim()) change.ai_model = input.value.trim();
    },
  };
  return h(
    'div',
    { class: 'stack' },
    card(h('h2', { text: 'Agent status' }), slot.el, status),
    settingsForm({
      title: 'Agent settings',
      path: `/projects/${project.id}/agent/config`,
      writable: can('agent', 'write'),
      fields: [choice('agent_mode', 'Agent mode', AGENT_MODES), model, threshold],
    }),
  );
}

/** A list of archivable records with a create form: forms and beacons. */
function archivableList({ title, noun, base, writable, columns, row, create }) {
  const slot = errorSlot();
  const creator = h('div', {});
  const { el: tableEl, body } = table([...columns, ''], title);
  const load = () =>
    run(null, slot, async () => {
      const items = await get(base);
      body.replaceChildren(
        ...(items.length
          ? items.map((item) => {
              const archived = Boolean(item.archived_at);
              const toggle = writable
                ? button(archived ? 'Unarchive' : 'Archive', () =>
                    run(toggle, slot, async () => (await api('POST', `${base}/${item.id}/${archived ? 'unarchive' : 'archive'}`), load())),
                  'ghost')
                : null;
              return h('tr', { class: archived ? 'archived' : null }, row(item).map((cell) => h('td', {}, cell)), h('td', { class: 'row-actions' }, toggle));
            })
          : [h('tr', {}, h('td', { colspan: String(columns.length + 1), class: 'muted', text: `No ${noun}s yet.` }))]),
      );
    });
  const openCreator = () => {
    const formSlot = errorSlot();
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: `Create ${noun}` });
    const { controls, body: toBody } = create();
    creator.replaceChildren(
      form(
        { class: 'form', submit, slot: formSlot },
        async () => {
          await api('POST', base, toBody());
          creator.replaceChildren();
          load();
        },
        controls,
        formSlot.el,
        h('div', { class: 'actions' }, submit, button('Cancel', () => creator.replaceChildren())),
      ),
    );
  };
  load();
  return card(
    h('div', { class: 'page-head' }, h('h2', { text: title }), writable ? button(`New ${noun}`, openCreator, 'primary') : null),
    creator,
    slot.el,
    tableEl,
  );
}

export function formsTab({ project, can }) {
  return archivableList({
    title: 'Forms',
    noun: 'form',
    base: `/projects/${project.id}/forms`,
    writable: can('forms', 'write'),
    columns: ['Name', 'Slug', 'Fields', 'Created'],
    row: (f) => [
      h('span', { class: 'strong', text: f.name }),
      h('span', { class: 'mono', text: f.slug }),
      f.fields.map((x) => x.label).join(', '),
      f.archived_at ? badge('archived', 'amber') : time(f.created_at),
    ],
    create: () => {
      const name = h('input', { type: 'text', required: true });
      return { controls: [h('h3', { text: 'New form' }), field('Form name', name, 'It starts with Name, Email and Message fields.')], body: () => ({ name: name.value }) };
    },
  });
}

export function beaconsTab({ project, can }) {
  const base = `/projects/${project.id}`;
  return archivableList({
    title: 'Beacons',
    noun: 'beacon',
    base: `${base}/beacons`,
    writable: can('beacons', 'write'),
    columns: ['Button', 'Form', 'Position', 'Created'],
    row: (b) => [
      h('span', { class: 'strong', text: b.button_label }),
      h('span', { class: 'mono', text: b.form_id }),
      b.position,
      b.archived_at ? badge('archived', 'amber') : time(b.created_at),
    ],
    create: () => {
      const form = select([['', 'Loading forms…']], { required: true });
      const label = h('input', { type: 'text', value: 'Contact us' });
      get(`${base}/forms`).then(
        (forms) => form.replaceChildren(...forms.map((f) => h('option', { value: f.id, text: f.name }))),
        () => form.replaceChildren(h('option', { value: '', text: 'Forms could not be loaded' })),
      );
      return {
        controls: [h('h3', { text: 'New beacon' }), field('Form', form, 'The form the beacon opens.'), field('Button label', label)],
        body: () => ({ form_id: form.value, button_label: label.value }),
      };
    },
  });
}

export function integrationsTab({ project, can }) {
  const base = `/projects/${project.id}/integrations`;
  const writable = can('integrations', 'write');
  const slot = errorSlot();
  const note = h('div', { role: 'status' });
  const { el: tableEl, body } = table(['Integration', 'Category', 'Status', 'Last sync', ''], 'Integrations');
  const load = () =>
    run(null, slot, async () => {
      const entries = await get(`${base}/catalog`);
      body.replaceChildren(
        ...entries.map((entry) => {
          const row = entry.integration;
          const actions = [];
          if (writable && entry.installed) {
            const paused = row.status === 'paused';
            const pause = button(paused ? 'Resume' : 'Pause', () =>
              run(pause, slot, async () => (await api('PATCH', `${base}/${entry.provider}/lifecycle`, { status: paused ? 'active' : 'paused' }), load())),
            'ghost');
            const disconnect = button('Disconnect', () => run(disconnect, slot, async () => (await api('DELETE', `${base}/${entry.provider}`), load())), 'ghost');
            actions.push(pause, disconnect);
          } else if (writable) {
            const install = button('Install link', () =>
              run(install, slot, async () => {
                const r = (await api('POST', `${base}/${entry.provider}/install-url`)).data;
                note.replaceChildren(h('p', {}, `${r.message} `, h('a', { href: r.install_url, rel: 'noreferrer', text: r.install_url })));
              }),
            'ghost');
            actions.push(install);
          }
          const state = row ? row.status : 'available';
          return h(
            'tr',
            {},
            h('td', {}, h('span', { class: 'strong', text: entry.name }), h('div', { class: 'muted small', text: entry.description })),
            h('td', { text: entry.category }),
            h('td', {}, badge(state, { active: 'green', paused: 'amber', error: 'red' }[state] || 'neutral')),
            h('td', {}, time(row && row.last_synced_at)),
            h('td', { class: 'row-actions' }, actions),
          );
        }),
      );
    });
  load();
  return card(h('h2', { text: 'Integrations' }), slot.el, note, tableEl);
}
