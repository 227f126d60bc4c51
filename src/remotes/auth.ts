// Registry authentication: learn the scheme from a 401 challenge, then Basic (credentials on every
// request) or Bearer (a token from the challenge's realm: anonymous or with basic credentials via GET,
// identity tokens via the OAuth2 refresh_token POST, or a registry token as-is). Tokens are cached per
// host + scope until they expire. `verifyCredentials` is what `hoist login` runs before saving anything.
import { HoistError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { type Challenge, challengeScopes, parseChallenges } from './challenge.ts';
import type { RegistryHost } from './hosts.ts';
import { discard, type HttpResponse, headerValues, readSmallBody, send } from './http.ts';
import { sendTo } from './send-to.ts';
import type { RegistryTimeouts } from './timeouts.ts';
import type { Credentials, CredentialsProvider } from './types.ts';

export interface AuthOptions {
  credentials?: CredentialsProvider | undefined;
  userAgent: string;
  attempts: number;
  baseDelayMs: number;
  timeouts?: RegistryTimeouts | undefined;
  /** Challenges and token fetches at debug level: which realm, service and scopes, never a secret. */
  log?: Logger | undefined;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const TOKEN_BODY_LIMIT = 1 << 20;
/** Visible ASCII: what a bearer token may hold (JWTs and opaque tokens alike). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
/** Token lifetime assumed when the server does not say (the token spec's default is 60 s). */
const DEFAULT_TOKEN_SECONDS = 60;

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export function unauthorizedError(host: string, registry: string, detail: string): HoistError {
  return new HoistError('HOIST_UNAUTHORIZED', `${host}: ${detail}`, {
    hint: `log in with: hoist login ${registry}`,
  });
}

function tokenEndpointError(host: RegistryHost, res: HttpResponse, detail: string): HoistError {
  if (res.status === 401)
    return unauthorizedError(
      host.host,
      host.registry,
      `authentication failed (token server ${res.url.host}: ${detail})`,
    );
  if (res.status === 403)
    return new HoistError(
      'HOIST_DENIED',
      `${host.host}: access denied by token server ${res.url.host}: ${detail}`,
    );
  return new HoistError(
    'HOIST_REGISTRY',
    `${host.host}: token server ${res.url.host} answered ${res.status}: ${detail}`,
  );
}

async function errorDetail(res: HttpResponse): Promise<string> {
  try {
    const text = (await readSmallBody(res, 64 * 1024)).toString('utf8');
    try {
      const doc = JSON.parse(text) as { errors?: { message?: string }[]; error?: string; details?: string };
      const m = doc.errors?.[0]?.message ?? doc.details ?? doc.error;
      if (m) return m;
    } catch {
      // not JSON
    }
    return text.trim().split('\n')[0]?.slice(0, 200) || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/** What every request of the token dance and of a login check shares: TLS, retries, deadlines, log. */
function requestBase(host: RegistryHost, opts: AuthOptions & { signal?: AbortSignal | undefined }) {
  return {
    tls: host.tls,
    signal: opts.signal,
    attempts: opts.attempts,
    baseDelayMs: opts.baseDelayMs,
    timeouts: opts.timeouts,
    log: opts.log,
  };
}

/**
 * Fetch a bearer token for the challenge's realm. `scopes` are the resource scopes wanted
 * (`repository:team/app:pull`); `account` is sent when logging in, as docker does.
 */
export async function fetchToken(
  host: RegistryHost,
  challenge: Challenge,
  scopes: string[],
  creds: Credentials | undefined,
  opts: AuthOptions & { signal?: AbortSignal | undefined; account?: string },
): Promise<{ token: string; expiresIn: number }> {
  const realm = challenge.params.realm;
  if (!realm) throw new HoistError('HOIST_REGISTRY', `${host.host}: bearer challenge without a realm`);
  let url: URL | undefined;
  try {
    url = new URL(realm);
  } catch {
    // reported below
  }
  // Only a web address: a realm such as file:///etc/passwd is not a token server.
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new HoistError('HOIST_REGISTRY', `${host.host}: invalid token realm ${JSON.stringify(realm)}`);
  const service = challenge.params.service;
  const headers: Record<string, string> = { 'user-agent': opts.userAgent, accept: 'application/json' };
  const base = requestBase(host, opts);
  if (opts.log?.enabled('debug'))
    opts.log.debug('fetching a registry token', {
      host: host.host,
      realm: `${url.origin}${url.pathname}`,
      service,
      scope: scopes.join(' '),
      with: creds?.identityToken
        ? 'identity token'
        : creds?.username !== undefined && creds.password !== undefined
          ? 'username and password'
          : 'no credentials',
    });
  let res: HttpResponse;
  if (creds?.identityToken) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken });
    form.set('client_id', 'hoist');
    if (service) form.set('service', service);
    if (scopes.length > 0) form.set('scope', scopes.join(' '));
    headers['content-type'] = 'application/x-www-form-urlencoded';
    res = await send({ ...base, method: 'POST', url, headers, body: form.toString() });
  } else {
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const account = opts.account ?? creds?.username;
    if (account) url.searchParams.set('account', account);
    if (creds?.username !== undefined && creds.password !== undefined)
      headers.authorization = basicAuthorization(creds.username, creds.password);
    res = await send({ ...base, method: 'GET', url, headers });
  }
  if (res.status !== 200) throw tokenEndpointError(host, res, await errorDetail(res));
  let doc: unknown;
  try {
    doc = JSON.parse((await readSmallBody(res, TOKEN_BODY_LIMIT)).toString('utf8'));
  } catch (err) {
    if (err instanceof HoistError) throw err;
    throw new HoistError('HOIST_REGISTRY', `${host.host}: token server ${url.host} sent invalid JSON`);
  }
  // Any JSON may come back (null, a list, a number): only an object's string fields count.
  const fields = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const token = fields.access_token || fields.token;
  if (typeof token !== 'string' || token === '')
    throw new HoistError('HOIST_REGISTRY', `${host.host}: token server ${url.host} returned no token`);
  // It goes into a header: control characters or spaces would break the request (or add headers).
  if (!TOKEN_CHARS.test(token))
    throw new HoistError(
      'HOIST_REGISTRY',
      `${host.host}: token server ${url.host} returned an invalid token (characters a header cannot carry)`,
    );
  const expiresIn =
    typeof fields.expires_in === 'number' && fields.expires_in > 0
      ? fields.expires_in
      : DEFAULT_TOKEN_SECONDS;
  return { token, expiresIn };
}

/** Pick the challenge hoist will answer: Bearer over Basic, ignoring schemes it does not speak. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

/** Per-resolver authentication state: which scheme each host asked for, and cached tokens. */
export class Authorizer {
  #opts: AuthOptions;
  #challenges = new Map<string, Challenge>();
  #tokens = new Map<string, CachedToken>();
  #pending = new Map<string, Promise<CachedToken>>();

  constructor(opts: AuthOptions) {
    this.#opts = opts;
  }

  async #credentials(host: RegistryHost): Promise<Credentials | undefined> {
    return this.#opts.credentials ? await this.#opts.credentials(host.host) : undefined;
  }

  #tokenKey(host: RegistryHost, scopes: string[]): string {
    return `${host.scheme}://${host.host}|${[...new Set(scopes)].sort().join(' ')}`;
  }

  /** The Authorization header for a request, once the host has challenged us (undefined before). */
  async authorization(
    host: RegistryHost,
    scopes: string[],
    signal?: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const challenge = this.#challenges.get(`${host.scheme}://${host.host}`);
    if (!challenge) return undefined;
    const creds = await this.#credentials(host);
    if (challenge.scheme === 'basic') {
      if (creds?.username === undefined || creds.password === undefined) return undefined;
      return basicAuthorization(creds.username, creds.password);
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const all = [...new Set([...scopes, ...challengeScopes(challenge)])];
    const key = this.#tokenKey(host, all);
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = fetchToken(host, challenge, all, creds, { ...this.#opts, signal }).then(
        ({ token, expiresIn }) => {
          // Renew a little early so a token does not expire between check and use.
          const entry = { token, expiresAt: Date.now() + Math.max(1, expiresIn - 10) * 1000 };
          this.#tokens.set(key, entry);
          return entry;
        },
      );
      this.#pending.set(key, pending);
      pending.then(
        () => this.#pending.delete(key),
        () => this.#pending.delete(key),
      );
    }
    return `Bearer ${(await pending).token}`;
  }

  /**
   * A request got 401: remember the challenge (it may ask for a new scope) and drop tokens for this host
   * and scope. Returns whether a retry can succeed (false: no scheme hoist speaks, or Basic with no
   * credentials to offer). The response body is left to the caller.
   */
  async onUnauthorized(host: RegistryHost, res: HttpResponse, scopes: string[]): Promise<boolean> {
    const challenge = pickChallenge(parseChallenges(headerValues(res.headers, 'www-authenticate')));
    const log = this.#opts.log;
    if (log?.enabled('debug'))
      log.debug('registry asks for authentication', {
        host: host.host,
        scheme: challenge?.scheme ?? 'none hoist speaks',
        realm: challenge?.params.realm,
        service: challenge?.params.service,
        scope: challenge ? challengeScopes(challenge).join(' ') || undefined : undefined,
      });
    if (!challenge) return false;
    const hostKey = `${host.scheme}://${host.host}`;
    const previous = this.#challenges.get(hostKey);
    this.#challenges.set(hostKey, challenge);
    this.#tokens.delete(this.#tokenKey(host, [...scopes, ...challengeScopes(challenge)]));
    if (challenge.scheme === 'basic') {
      const creds = await this.#credentials(host);
      // Sending the same Basic credentials again cannot help.
      return previous?.scheme !== 'basic' && creds?.username !== undefined && creds.password !== undefined;
    }
    return true;
  }
}

/**
 * Check credentials against a registry without saving them (what `hoist login` does first): ping
 * `/v2/`, then answer its challenge with the credentials. Throws HOIST_UNAUTHORIZED if they are refused.
 */
export async function verifyCredentials(
  host: RegistryHost,
  creds: Credentials,
  opts: AuthOptions & { signal?: AbortSignal | undefined },
): Promise<void> {
  const url = new URL(`${host.scheme}://${host.host}${host.path}/`);
  const headers = { 'user-agent': opts.userAgent, ...host.headers };
  const base = requestBase(host, opts);
  // Through sendTo: a loopback registry's switch to plain HTTP, hosts.toml's proxy and dial_timeout.
  const ping = await sendTo(host, { ...base, method: 'GET', url, headers });
  if (ping.status === 200) {
    await discard(ping);
    return; // the registry needs no authentication; docker saves the credentials anyway
  }
  if (ping.status !== 401) {
    await discard(ping);
    throw new HoistError('HOIST_REGISTRY', `${host.host}: /v2/ answered ${ping.status}; is this a registry?`);
  }
  const challenge = pickChallenge(parseChallenges(headerValues(ping.headers, 'www-authenticate')));
  await discard(ping);
  if (!challenge)
    throw new HoistError('HOIST_REGISTRY', `${host.host}: no supported authentication scheme offered`);
  if (challenge.scheme === 'bearer') {
    if (creds.registryToken) return;
    const account = creds.username;
    await fetchToken(host, challenge, [], creds, { ...opts, ...(account ? { account } : {}) });
    return;
  }
  if (creds.username === undefined || creds.password === undefined)
    throw unauthorizedError(host.host, host.registry, 'the registry needs a username and password');
  const retry = await sendTo(host, {
    ...base,
    method: 'GET',
    url,
    headers: { ...headers, authorization: basicAuthorization(creds.username, creds.password) },
  });
  await discard(retry);
  if (retry.status === 401)
    throw unauthorizedError(host.host, host.registry, `authentication failed for user ${creds.username}`);
  if (retry.status !== 200)
    throw new HoistError('HOIST_REGISTRY', `${host.host}: /v2/ answered ${retry.status} after login`);
}

export { errorDetail };
