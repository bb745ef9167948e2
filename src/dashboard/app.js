// The dashboard: signs in with an API key (the server keeps a session; the page never keeps the
// key), then routes between pages in the browser. Every page is an API client of /api/v1 under
// the signed-in key's scopes: controls for writes the key cannot make are not shown.

import { session, whenUnauthorized } from './api.js';
import { auditPage } from './audit.js';
import { keysPage } from './keys.js';
import { projectPage } from './project.js';
import { newProjectPage, projectsPage } from './projects.js';
import { button, errorSlot, field, form, h } from './ui.js';

const VERBS = ['read', 'write', 'admin'];
const root = document.getElementById('app');
let me = null;
let flash = null;

const routes = [
  [/^\/dashboard\/projects$/, projectsPage],
  [/^\/dashboard\/projects\/new$/, newProjectPage],
  [/^\/dashboard\/projects\/(prj_[a-z0-9]+)(?:\/([a-z-]+))?(?:\/([a-z0-9_]+))?$/, projectPage],
  [/^\/dashboard\/settings\/api-keys$/, keysPage],
  [/^\/dashboard\/settings\/audit-log$/, auditPage],
];

/** Whether the signed-in key may `verb` on `resource` (the server decides anyway). */
function can(resource, verb) {
  const held = me && me.access[resource];
  return Boolean(held) && VERBS.indexOf(held) >= VERBS.indexOf(verb);
}

export function navigate(path, { replace = false, message = null } = {}) {
  if (message) flash = message;
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function signedOut(message) {
  me = null;
  const here = location.pathname + location.search;
  const next = here.startsWith('/dashboard/signin') ? '' : `?next=${encodeURIComponent(here)}`;
  navigate(`/dashboard/signin${next}`, { replace: true, message });
}

whenUnauthorized(() => signedOut('Your session has ended. Sign in again.'));

function takeFlash() {
  const message = flash;
  flash = null;
  return message ? h('p', { class: 'flash', role: 'status', text: message }) : null;
}

function signInPage() {
  document.title = 'Sign in · rogeriq';
  const key = h('input', {
    type: 'text',
    class: 'masked',
    name: 'key',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'riq_…',
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-wide', text: 'Sign in' });
  const slot = errorSlot();
  const signInForm = form(
    { class: 'signin-form', submit, slot },
    async () => {
      me = await session.signIn(key.value.trim());
      key.value = '';
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/dashboard/') ? next : '/dashboard/projects', { replace: true });
    },
    field('API key', key, 'The key is checked once; the server keeps a session. The browser never stores the key.'),
    slot.el,
    submit,
  );
  root.replaceChildren(
    h(
      'main',
      { class: 'signin' },
      h(
        'div',
        { class: 'signin-card' },
        h('div', { class: 'brand brand-large' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'R' }), 'rogeriq'),
        h('h1', { text: 'Sign in' }),
        takeFlash(),
        signInForm,
      ),
    ),
  );
  key.focus();
}

function layout(content) {
  const path = location.pathname;
  const link = (href, label, active) =>
    h('a', { href, class: active ? 'nav-link active' : 'nav-link', 'aria-current': active ? 'page' : null, text: label });
  const signOut = button('Sign out', async () => {
    try {
      await session.signOut();
    } finally {
      me = null;
      navigate('/dashboard/signin', { replace: true, message: 'You are signed out.' });
    }
  }, 'ghost');
  const main = h('main', { class: 'main', id: 'main' }, takeFlash(), content);
  root.replaceChildren(
    h('a', { class: 'skip', href: '#main', text: 'Skip to content' }),
    h(
      'div',
      { class: 'shell' },
      h(
        'header',
        { class: 'sidebar' },
        h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true', text: 'R' }), 'rogeriq'),
        h('p', { class: 'org' }, h('span', { class: 'org-label', text: 'Organisation' }), h('span', { class: 'org-name', text: me.org.name })),
        h(
          'nav',
          { 'aria-label': 'Main' },
          link('/dashboard/projects', 'Projects', path.startsWith('/dashboard/projects')),
          link('/dashboard/settings/api-keys', 'API keys', path === '/dashboard/settings/api-keys'),
          link('/dashboard/settings/audit-log', 'Audit log', path === '/dashboard/settings/audit-log'),
        ),
        h('div', { class: 'who' }, h('span', { class: 'muted', text: `Key: ${me.key.name}` }), signOut),
      ),
      main,
    ),
  );
  return main;
}

async function render() {
  const path = location.pathname.replace(/\/+$/, '') || '/dashboard';
  if (path === '/dashboard/signin') {
    signInPage();
    return;
  }
  if (!me) {
    try {
      me = await session.current();
    } catch (error) {
      if (error.status === 401) {
        signedOut(null);
        return;
      }
      root.replaceChildren(h('main', { class: 'signin' }, h('p', { class: 'error', role: 'alert', text: error.message })));
      return;
    }
  }
  if (path === '/dashboard') {
    navigate('/dashboard/projects', { replace: true });
    return;
  }
  const found = routes.find(([pattern]) => pattern.test(path));
  const ctx = { me, can, navigate, params: found ? path.match(found[0]).slice(1) : [] };
  const page = found ? found[1](ctx) : h('div', {}, h('h1', { text: 'Not found' }), h('p', { text: 'No page here.' }));
  layout(page);
  const heading = page.querySelector('h1');
  if (heading) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

// Links inside the dashboard change the page without a reload.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="/dashboard"]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});
window.addEventListener('popstate', render);
render();
