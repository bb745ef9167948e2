// The dashboard's one way to the server: the API under /api/v1 and the session endpoint, both
// authenticated by the session cookie the browser holds (HttpOnly: never readable here).

export class ApiError extends Error {
  constructor(status, body, requestId) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || `HTTP_${status}`;
    this.requestId = (body && body.request_id) || requestId || null;
    this.retryAfter = body && typeof body.retry_after === 'number' ? body.retry_after : null;
    this.issues = (body && Array.isArray(body.issues) && body.issues) || [];
  }
}

let onUnauthorized = () => {};

/** What to do when the server says the session is gone (401): back to sign-in. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function send(method, url, body, { quiet401 = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (cause) {
    throw new ApiError(0, { error: 'The server cannot be reached. Check your connection.', code: 'NETWORK' });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { error: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed, response.headers.get('X-Request-Id'));
    if (response.status === 401 && !quiet401) {
      // The page goes back to sign-in; nothing else needs to show this error.
      error.handled = true;
      onUnauthorized(error);
    }
    throw error;
  }
  return parsed;
}

/** `method` on `/api/v1` + `path`; resolves to the whole body ({data, cursor, has_more}). */
export function api(method, path, body) {
  return send(method, `/api/v1${path}`, body);
}

/** GET of one object or plain list: resolves to `data`. */
export async function get(path) {
  return (await api('GET', path)).data;
}

/** A query string of the values given (empty ones left out). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const session = {
  current: () => send('GET', '/dashboard/session', undefined, { quiet401: true }).then((r) => r.data),
  signIn: (key) => send('POST', '/dashboard/session', { key }, { quiet401: true }).then((r) => r.data),
  signOut: () => send('DELETE', '/dashboard/session', undefined, { quiet401: true }),
};
