// The dashboard's journeys in a real browser: Debian's Chromium, driven by playwright-core and
// never downloaded. Started by `dashboard::browser_journeys` (tests/api/dashboard.rs) with a
// running server; every control is found by its role and exact accessible name (issue #24).
//
// Environment: BASE_URL, ORG_ID, ADMIN_KEY, READONLY_KEY, CHROMIUM, SCREENSHOTS (a folder).

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE_URL');
const ORG = env('ORG_ID');
const ADMIN_KEY = env('ADMIN_KEY');
const READONLY_KEY = env('READONLY_KEY');
const SHOTS = env('SCREENSHOTS');
const TIMEOUT = 15_000;

/** The API with a key, as a script would call it. */
async function apiAs(key, method, route, body) {
  const response = await fetch(`${BASE}/api/v1${route}`, {
    method,
    headers: { 'X-API-Key': key, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function created(key, route, body) {
  const r = await apiAs(key, 'POST', route, body);
  assert.ok(r.status === 201 || r.status === 200, `POST ${route}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data;
}

/** Polls `check` until it holds or the time is up. */
async function eventually(what, check) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    let last;
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A local webhook receiver that answers 200 to everything. */
function receiver() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok'));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const step = (name) => console.log(`journey: ${name}`);

async function main() {
  const hook = await receiver();
  const hookUrl = `http://127.0.0.1:${hook.address().port}/hooks`;

  // Data made through the API, as another client would: projects, and a conversation that a
  // customer opened through a public form.
  const store = await created(ADMIN_KEY, `/orgs/${ORG}/projects`, { name: 'Storefront', domain: 'shop.example.com' });
  await created(ADMIN_KEY, `/orgs/${ORG}/projects`, { name: 'Mobile app' });
  await created(ADMIN_KEY, `/orgs/${ORG}/projects`, { name: 'Partner portal', domain: 'partners.example.com' });
  const form = await created(ADMIN_KEY, `/projects/${store.id}/forms`, { name: 'Contact' });
  const submitted = await fetch(`${BASE}/api/f/${form.id}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Dana Fields', email: 'dana@example.com', message: 'My order #1042 has not arrived yet.' }),
  });
  assert.equal(submitted.status, 200, await submitted.text());
  const conversations = (await apiAs(ADMIN_KEY, 'GET', `/projects/${store.id}/conversations`)).body.data;
  const conversation = conversations[0];
  await apiAs(ADMIN_KEY, 'PATCH', `/projects/${store.id}/conversations/${conversation.id}`, { subject: 'Order #1042 has not arrived' });
  for (const [subject, priority] of [['Invoice address change', 'normal'], ['Refund for a damaged parcel', 'high']]) {
    await created(ADMIN_KEY, `/projects/${store.id}/conversations`, { subject, priority, channel: 'email' });
  }

  // Playwright gives the browser a fresh, temporary profile of its own.
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM'),
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Paris', locale: 'en-GB' });
  context.setDefaultTimeout(TIMEOUT);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();

  // Every violation of the page's Content-Security-Policy reaches the console.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  const violations = [];
  page.on('console', (message) => {
    if (/content security policy|csp violation/i.test(message.text())) violations.push(message.text());
  });
  page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
  const pagesSeen = [];
  page.on('response', (response) => {
    if (response.request().resourceType() === 'document' && response.status() === 200) {
      pagesSeen.push(response.url());
      assert.ok(response.headers()['content-security-policy'], `no CSP on ${response.url()}`);
      assert.equal(response.headers()['x-frame-options'], 'DENY');
      assert.equal(response.headers()['referrer-policy'], 'same-origin');
    }
  });

  const role = (r, name, scope = page) => scope.getByRole(r, { name, exact: true });
  const nav = page.getByRole('navigation', { name: 'Main' });
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  const go = (where) => page.goto(`${BASE}${where}`);

  step('sign in, with a wrong key refused');
  await go('/');
  await role('textbox', 'API key').waitFor();
  assert.equal(new URL(page.url()).pathname, '/dashboard/signin');
  await shot('sign-in');
  await role('textbox', 'API key').fill('riq_abcdefghijkl_abcdefghijklmnopqrstuvwxyz012345');
  await role('button', 'Sign in').click();
  await page.getByRole('alert').filter({ hasText: 'Invalid API key' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/dashboard/signin');
  await role('textbox', 'API key').fill(ADMIN_KEY);
  await role('button', 'Sign in').click();
  await role('heading', 'Projects').waitFor();
  for (const link of ['Projects', 'API keys', 'Audit log']) await role('link', link, nav).waitFor();
  await role('button', 'Sign out').waitFor();
  await page.getByText('Default', { exact: true }).waitFor();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(ADMIN_KEY.slice(4)), 'the key is in storage the page can read');
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'riq_session');
  assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/', JSON.stringify(cookie));

  step('keyboard reaches the controls');
  const reached = new Set();
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press('Tab');
    reached.add(await page.evaluate(() => document.activeElement.textContent.trim() || document.activeElement.labels?.[0]?.textContent || ''));
  }
  for (const name of ['Projects', 'API keys', 'Audit log', 'Sign out', 'New project', 'Search projects']) {
    assert.ok(reached.has(name), `Tab never reached ${name}: ${[...reached].join(' | ')}`);
  }

  step('create, edit and search a project');
  await role('button', 'New project').click();
  await role('textbox', 'Name').fill('Acme Support');
  await role('textbox', 'Domain').fill('support.acme.example');
  await role('combobox', 'Agent mode').selectOption('autopilot');
  await role('button', 'Create project').click();
  await role('heading', 'Acme Support').waitFor();
  const acmeId = new URL(page.url()).pathname.split('/')[3];
  const acme = (await apiAs(ADMIN_KEY, 'GET', `/orgs/${ORG}/projects/${acmeId}`)).body.data;
  assert.equal(acme.agent_mode, 'autopilot');
  assert.equal(acme.domain, 'support.acme.example');
  for (const tab of ['Conversations', 'Contacts', 'Knowledge base', 'Widget', 'Agent', 'Webhooks', 'Forms', 'Beacons', 'Integrations', 'Settings']) {
    await role('tab', tab).waitFor();
  }
  await role('tab', 'Settings').click();
  await role('textbox', 'Name').fill('Acme Help');
  await role('button', 'Save').click();
  await role('heading', 'Acme Help').waitFor();
  await role('link', 'Projects', nav).click();
  await role('searchbox', 'Search projects').fill('help');
  await role('link', 'Acme Help').waitFor();
  await eventually('the search to hide other projects', async () => (await page.getByRole('row').count()) === 2);
  await role('searchbox', 'Search projects').fill('');
  await eventually('every project listed', async () => (await page.getByRole('row').count()) === 5);
  await shot('projects');

  step('foreign Origin on a write is refused');
  const foreign = await context.request.post(`${BASE}/api/v1/orgs/${ORG}/projects`, {
    headers: { Origin: 'http://evil.example' },
    data: { name: 'Forged' },
  });
  assert.equal(foreign.status(), 403, await foreign.text());
  assert.equal((await foreign.json()).code, 'FORBIDDEN');

  step('a conversation from the API: reply, close');
  await go(`/dashboard/projects/${store.id}/conversations`);
  await role('combobox', 'Status').selectOption('open');
  await page.getByRole('link', { name: /Order #1042/ }).click();
  await page.getByText('My order #1042 has not arrived yet.', { exact: false }).waitFor();
  await role('textbox', 'Reply').fill('Sorry about that, Dana: it ships today.');
  await role('button', 'Send').click();
  await page.getByText('Sorry about that, Dana: it ships today.').waitFor();
  await shot('conversations');
  await role('button', 'Close').click();
  await role('button', 'Reopen').waitFor();
  const messages = (await apiAs(ADMIN_KEY, 'GET', `/projects/${store.id}/conversations/${conversation.id}/messages`)).body.data;
  assert.ok(messages.some((m) => m.content === 'Sorry about that, Dana: it ships today.' && m.sender_type === 'agent'));
  const closed = (await apiAs(ADMIN_KEY, 'GET', `/projects/${store.id}/conversations/${conversation.id}`)).body.data;
  assert.equal(closed.status, 'closed');

  step('write and publish an article, then find it');
  await go(`/dashboard/projects/${acmeId}/kb`);
  await role('button', 'New article').click();
  await role('textbox', 'Title').fill('Resetting your password');
  await role('textbox', 'Body').fill('Open Settings, choose Security, then Reset password. A link arrives by email within minutes.');
  await role('button', 'Save').click();
  await page.getByRole('status').filter({ hasText: 'draft' }).waitFor();
  await role('button', 'Publish').click();
  await page.getByRole('status').filter({ hasText: 'published' }).waitFor();
  await role('searchbox', 'Search articles').fill('password reset');
  await role('searchbox', 'Search articles').press('Enter');
  await page.getByRole('list', { name: 'Search results' }).getByRole('link', { name: 'Resetting your password' }).waitFor();
  await shot('knowledge-base');

  step('create a webhook and send a test');
  await role('tab', 'Webhooks').click();
  await role('button', 'New webhook').click();
  await role('textbox', 'URL').fill(hookUrl);
  await role('checkbox', 'conversation.*').check();
  await role('checkbox', 'message.created').check();
  await role('button', 'Create webhook').click();
  const secret = await page.locator('.secret-value').textContent();
  assert.match(secret, /^whsec_/);
  await role('button', 'Send test').click();
  await page.getByRole('status').filter({ hasText: 'Delivered: HTTP 200' }).waitFor();
  const deliveries = page.getByRole('table', { name: `Deliveries of ${hookUrl}` });
  await deliveries.getByRole('row').filter({ hasText: 'webhook.test' }).filter({ hasText: 'delivered' }).waitFor();
  await shot('webhooks');

  step('a key with two scopes: secret once, revoke, refused');
  await role('link', 'API keys', nav).click();
  await role('button', 'New key').click();
  await role('textbox', 'Key name').fill('CI bot');
  await role('checkbox', 'kb:read').check();
  await role('checkbox', 'conversations:read').check();
  await role('button', 'Create key').click();
  const botKey = (await page.locator('.secret-value').textContent()).trim();
  assert.match(botKey, /^riq_/);
  await role('button', 'Copy').click();
  await page.getByRole('status').filter({ hasText: 'Copied.' }).waitFor();
  assert.equal((await apiAs(botKey, 'GET', `/projects/${acmeId}/kb/articles`)).status, 200);
  const bot = (await apiAs(ADMIN_KEY, 'GET', `/orgs/${ORG}/keys`)).body.data.find((k) => k.name === 'CI bot');
  assert.deepEqual(bot.scopes.sort(), ['conversations:read', 'kb:read']);
  await shot('api-keys');
  await role('link', 'Projects', nav).click();
  await role('link', 'API keys', nav).click();
  await page.getByRole('row').filter({ hasText: 'CI bot' }).waitFor();
  assert.equal(await page.locator('.secret-value').count(), 0, 'the secret is shown once');
  await page.getByRole('row').filter({ hasText: 'CI bot' }).getByRole('button', { name: 'Revoke', exact: true }).click();
  await role('button', 'Revoke', page.getByRole('dialog')).click();
  await page.getByRole('row').filter({ hasText: 'CI bot' }).getByText('revoked').waitFor();
  assert.equal((await apiAs(botKey, 'GET', `/projects/${acmeId}/kb/articles`)).status, 401);

  step('the audit log, newest first, and its Action filter');
  await role('link', 'Audit log', nav).click();
  const rows = page.getByRole('table', { name: 'Audit log, newest first' }).locator('tbody tr');
  await eventually('audit entries', async () => (await rows.count()) > 5);
  const actions = await rows.locator('td:nth-child(3)').allTextContents();
  const times = await rows.locator('time').evaluateAll((els) => els.map((e) => e.getAttribute('datetime')));
  assert.equal(actions[0], 'api_key.revoked');
  const order = ['api_key.revoked', 'api_key.created', 'webhook.created', 'kb_article.published', 'kb_article.created', 'project.updated', 'project.created'];
  const positions = order.map((a) => actions.indexOf(a));
  assert.ok(positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1])), `order: ${actions.join(', ')}`);
  assert.deepEqual([...times].sort().reverse(), times, 'newest first');
  await page.getByRole('row').filter({ hasText: 'api_key.revoked' }).getByText('Bootstrap admin key').waitFor();
  await shot('audit-log');
  await role('combobox', 'Action').selectOption('project.created');
  await eventually('the filter', async () => {
    const shown = await rows.locator('td:nth-child(3)').allTextContents();
    return shown.length === 4 && shown.every((a) => a === 'project.created');
  });

  step('delete a project through the confirmation, with its counts');
  await go(`/dashboard/projects/${acmeId}/settings`);
  await role('button', 'Delete project').click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('kb articles').waitFor();
  await dialog.getByText('webhook deliveries').waitFor();
  assert.ok(await role('button', 'Delete', dialog).isDisabled());
  await role('textbox', 'Type the project name to confirm', dialog).fill('Acme');
  assert.ok(await role('button', 'Delete', dialog).isDisabled());
  await role('textbox', 'Type the project name to confirm', dialog).fill('Acme Help');
  await shot('delete-project');
  await role('button', 'Delete', dialog).click();
  await page.getByRole('status').filter({ hasText: 'deleted with' }).waitFor();
  assert.equal((await apiAs(ADMIN_KEY, 'GET', `/orgs/${ORG}/projects/${acmeId}`)).status, 404);

  step('the other pages, at 1280 px and 390 px');
  for (const tab of ['contacts', 'widget', 'agent', 'forms', 'beacons', 'integrations']) {
    await go(`/dashboard/projects/${store.id}/${tab}`);
    await role('tab', tab === 'kb' ? 'Knowledge base' : tab[0].toUpperCase() + tab.slice(1)).waitFor();
    await page.locator('.tabpanel .card').first().waitFor();
  }
  await go(`/dashboard/projects/${store.id}/widget`);
  await role('textbox', 'Welcome message').fill('Hello! Ask us anything.');
  await role('button', 'Save').click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  await page.setViewportSize({ width: 390, height: 844 });
  await go('/dashboard/projects');
  await role('link', 'Storefront').waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling at 390 px');
  await shot('projects-390');
  await go(`/dashboard/projects/${store.id}/conversations/${conversation.id}`);
  await role('textbox', 'Reply').waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling at 390 px');
  await page.setViewportSize({ width: 1280, height: 800 });

  step('sign out: the cookie no longer works');
  await role('button', 'Sign out').click();
  await role('button', 'Sign in').waitFor();
  const stale = await fetch(`${BASE}/api/v1/orgs/${ORG}/projects`, { headers: { Cookie: `riq_session=${cookie.value}` } });
  assert.equal(stale.status, 401);

  step('a read-only key sees no write control, and a forged write gets 403');
  await role('textbox', 'API key').fill(READONLY_KEY);
  await role('button', 'Sign in').click();
  await role('heading', 'Projects').waitFor();
  await role('link', 'Storefront').waitFor();
  const none = async (r, name) => assert.equal(await role(r, name).count(), 0, `${r} "${name}" is shown to a read-only key`);
  await none('button', 'New project');
  await go(`/dashboard/projects/${store.id}/conversations/${conversation.id}`);
  await page.getByText('Sorry about that, Dana: it ships today.').waitFor();
  await none('textbox', 'Reply');
  await none('button', 'Reopen');
  await role('tab', 'Knowledge base').click();
  await role('heading', 'Articles').waitFor();
  await none('button', 'New article');
  await role('tab', 'Webhooks').click();
  await role('heading', 'Webhooks').waitFor();
  await none('button', 'New webhook');
  await role('tab', 'Settings').click();
  await role('heading', 'Project settings').waitFor();
  await none('button', 'Delete project');
  await none('button', 'Save');
  await role('link', 'API keys', nav).click();
  await page.getByRole('row').filter({ hasText: 'Bootstrap admin key' }).waitFor();
  await none('button', 'New key');
  await none('button', 'Revoke');
  const forged = await page.evaluate(async (org) => {
    const r = await fetch(`/api/v1/orgs/${org}/projects`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Forged' }),
    });
    return { status: r.status, body: await r.json() };
  }, ORG);
  assert.equal(forged.status, 403, JSON.stringify(forged.body));
  assert.equal(forged.body.code, 'INSUFFICIENT_SCOPE');

  step('a session that ends sends the page back to sign-in');
  await context.clearCookies();
  await role('link', 'Projects', nav).click();
  await page.getByText('Your session has ended. Sign in again.').waitFor();
  await role('textbox', 'API key').waitFor();

  step('no CSP violation on any page');
  assert.ok(pagesSeen.length >= 8, `pages loaded: ${pagesSeen.length}`);
  assert.deepEqual(violations, []);

  await browser.close();
  hook.close();
}

// A stuck browser must not hold `make test`: the whole suite takes well under a minute.
setTimeout(() => {
  console.error('journeys: still running after 4 minutes; giving up');
  process.exit(1);
}, 240_000).unref();

main().then(
  () => console.log('journeys: all passed'),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
