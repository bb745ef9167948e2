// The knowledge base: articles (paged), an editor to write, save and publish one, and search
// over the published ones.

import { api, get, query } from './api.js';
import { badge, button, card, errorSlot, field, form, h, pager, run, table, time } from './ui.js';

const TONES = { draft: 'neutral', published: 'green', archived: 'amber' };

export function kbTab({ project, can }) {
  const base = `/projects/${project.id}/kb`;
  const editor = h('div', {});
  const search = h('input', { type: 'search', placeholder: 'Words from published articles', autocomplete: 'off' });
  const hits = h('ol', { class: 'hits', 'aria-label': 'Search results' });
  const searchSlot = errorSlot();
  const { el: tableEl, body } = table(['Title', 'Status', 'Category', 'Updated'], 'Articles');
  let listing = null;
  const edit = (article) => {
    editor.replaceChildren(articleEditor({ base, article, can, onSaved: () => listing.reload() }));
    editor.querySelector('input').focus();
  };
  const openById = (id) => run(null, searchSlot, async () => edit(await get(`${base}/articles/${id}`)));
  const row = (a) =>
    h(
      'tr',
      {},
      h('td', {}, h('a', { href: '#', class: 'strong', text: a.title, onclick: (e) => (e.preventDefault(), edit(a)) })),
      h('td', {}, badge(a.status, TONES[a.status])),
      h('td', { text: a.category || '—' }),
      h('td', {}, time(a.updated_at)),
    );
  listing = pager(body, (cursor) => api('GET', `${base}/articles${query({ cursor, limit: 25 })}`), row);
  const searchForm = h(
    'form',
    {
      class: 'toolbar',
      role: 'search',
      onsubmit: (event) => {
        event.preventDefault();
        const q = search.value.trim();
        if (!q) {
          hits.replaceChildren();
          return;
        }
        run(null, searchSlot, async () => {
          const found = await get(`${base}/search${query({ q })}`);
          hits.replaceChildren(
            ...(found.length
              ? found.map((hit) =>
                  h(
                    'li',
                    {},
                    h('a', { href: '#', class: 'strong', text: hit.title, onclick: (e) => (e.preventDefault(), openById(hit.id)) }),
                    h('span', { class: 'muted', text: ` score ${hit.score.toFixed(2)}` }),
                  ),
                )
              : [h('li', { class: 'muted', text: 'No published article matches.' })]),
          );
        });
      },
    },
    field('Search articles', search),
    h('button', { type: 'submit', class: 'btn btn-secondary', text: 'Search' }),
  );
  return h(
    'div',
    { class: 'stack' },
    card(
      h('div', { class: 'page-head' }, h('h2', { text: 'Articles' }), can('kb', 'write') ? button('New article', () => edit(null), 'primary') : null),
      searchForm,
      searchSlot.el,
      hits,
      editor,
      tableEl,
      listing.el,
    ),
  );
}

function articleEditor({ base, article, can, onSaved }) {
  let current = article;
  const title = h('input', { type: 'text', required: true, value: article ? article.title : '' });
  const content = h('textarea', { rows: '6', required: true, text: article ? article.content : '' });
  const state = h('p', { class: 'muted', role: 'status' });
  const slot = errorSlot();
  const save = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Save' });
  const heading = h('h3', { text: article ? 'Edit article' : 'New article' });
  const showState = () => {
    if (current) heading.textContent = 'Edit article';
    state.replaceChildren(...(current ? [badge(current.status, TONES[current.status]), ' updated ', time(current.updated_at)] : ['New draft']));
  };
  const persist = async () => {
    const body = { title: title.value, content: content.value };
    current = current
      ? (await api('PATCH', `${base}/articles/${current.id}`, body)).data
      : (await api('POST', `${base}/articles`, body)).data;
    showState();
    onSaved();
  };
  const publish = button('Publish', () =>
    run(publish, slot, async () => {
      await persist();
      current = (await api('POST', `${base}/articles/${current.id}/publish`)).data;
      showState();
      onSaved();
    }),
  );
  showState();
  const writable = can('kb', 'write');
  if (!writable) {
    title.readOnly = true;
    content.readOnly = true;
  }
  return form(
    { class: 'form editor', submit: save, slot },
    persist,
    heading,
    state,
    field('Title', title),
    field('Body', content, 'Markdown.'),
    slot.el,
    writable ? h('div', { class: 'actions' }, save, publish) : null,
  );
}
