// Small DOM helpers shared by every page: element building, labelled fields, dates in the
// browser's time zone, error messages beside their cause, paged lists and confirmations.

/** Builds an element: `props` sets attributes (`on…` adds listeners, `text` the text). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'value') el.value = value;
    else if (name === 'checked') el.checked = true;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

let fieldCount = 0;

/** A control with its visible label (its accessible name) and an optional hint. */
export function field(label, control, hint) {
  if (!control.id) control.id = `field-${++fieldCount}`;
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hintEl);
}

/** A checkbox with its label to the right. */
export function checkbox(label, props = {}) {
  const input = h('input', { type: 'checkbox', ...props });
  return { input, el: h('label', { class: 'check' }, input, h('span', { text: label })) };
}

export function select(options, props = {}) {
  return h(
    'select',
    props,
    options.map(([value, label]) => h('option', { value, selected: value === props.value, text: label })),
  );
}

export function button(label, onclick, variant = 'secondary', props = {}) {
  return h('button', { type: 'button', class: `btn btn-${variant}`, onclick, ...props }, label);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A timestamp of the API, shown in the browser's time zone. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  const date = new Date(iso);
  return h('time', { datetime: iso, title: date.toString() }, dateFormat.format(date));
}

/** The text of an API error: its message, what to fix, when to retry, and the request id. */
export function describe(error) {
  const parts = [error.message || String(error)];
  if (error.issues && error.issues.length) {
    parts.push(error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '));
  }
  if (error.status === 429 && error.retryAfter !== null) {
    parts.push(`Try again in ${error.retryAfter} s.`);
  }
  return parts.join(' — ');
}

/** A place for the error of one action, shown beside its control. */
export function errorSlot() {
  const el = h('div', { class: 'error', role: 'alert', hidden: true });
  return {
    el,
    show(error) {
      el.replaceChildren(
        h('span', { text: describe(error) }),
        error.requestId ? h('span', { class: 'request-id', text: `Request ${error.requestId}` }) : null,
      );
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.replaceChildren();
    },
  };
}

/** Runs `action` with `control` disabled, its errors shown in `slot`. */
export async function run(control, slot, action) {
  slot.clear();
  if (control) control.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (!error.handled) slot.show(error);
    return undefined;
  } finally {
    if (control) control.disabled = false;
  }
}

/** A form whose submission runs `action` with `submit` disabled, its errors shown in `slot`. */
export function form({ submit, slot, ...props }, action, ...children) {
  const onsubmit = (event) => {
    event.preventDefault();
    run(submit, slot, action);
  };
  return h('form', { ...props, onsubmit }, ...children);
}

/**
 * A list that pages with the API's cursors: `load(cursor)` resolves to {data, cursor,
 * has_more}; `row(item)` renders one item into `into`. Returns {el, reload}.
 */
export function pager(into, load, row) {
  const more = button('Load more', () => next(), 'secondary', { hidden: true });
  const slot = errorSlot();
  const empty = h('p', { class: 'empty', hidden: true, text: 'Nothing here yet.' });
  let cursor = null;
  let generation = 0;
  async function next(reset = false) {
    const mine = reset ? ++generation : generation;
    if (reset) cursor = null;
    await run(more, slot, async () => {
      const page = await load(cursor);
      if (mine !== generation) return;
      if (reset) into.replaceChildren();
      for (const item of page.data) into.append(row(item));
      cursor = page.cursor;
      more.hidden = !page.has_more;
      empty.hidden = into.children.length > 0 || page.has_more;
    });
  }
  next(true);
  return { el: h('div', { class: 'pager' }, empty, slot.el, more), reload: () => next(true) };
}

/** A modal confirmation; resolves to whether the user confirmed. */
export function confirm({ title, body, action, variant = 'danger' }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title' });
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.append(
      h('h2', { id: 'confirm-title', text: title }),
      h('p', { text: body }),
      h('div', { class: 'actions' }, button('Cancel', () => close(false)), button(action, () => close(true), variant)),
    );
    dialog.addEventListener('cancel', () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A secret shown once, with a button that copies it. */
export function secretBox(label, secret) {
  const status = h('span', { class: 'muted', role: 'status' });
  const copy = button('Copy', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status.textContent = 'Copied.';
    } catch {
      status.textContent = 'Select the text and copy it.';
    }
  });
  return h(
    'div',
    { class: 'secret' },
    h('p', { class: 'secret-label', text: label }),
    h('div', { class: 'secret-row' }, h('code', { class: 'secret-value', text: secret }), copy, status),
    h('p', { class: 'hint', text: 'It will not be shown again: store it now.' }),
  );
}

export function badge(text, tone = 'neutral') {
  return h('span', { class: `badge badge-${tone}`, text });
}

/** A table whose rows are added later; scrolls sideways on narrow screens. */
export function table(headers, caption) {
  const body = h('tbody');
  const el = h(
    'div',
    { class: 'table-wrap' },
    h('table', {}, caption ? h('caption', { class: 'sr-only', text: caption }) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))), body),
  );
  return { el, body };
}

export function card(...children) {
  return h('section', { class: 'card' }, ...children);
}
