// A Docker token server for tests (the auth service distribution's `auth.token` points at): issues RS256
// JWTs signed with a throwaway key whose self-signed cert (made with openssl) is the registry's
// rootcertbundle. distribution 2.8 finds the signing key by the JWT `kid`, which must be libtrust's key ID
// of that public key: SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 without padding,
// in 12 groups of 4 joined by ':'.
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TOKEN_SERVICE = 'hoist-test-registry';
export const TOKEN_ISSUER = 'hoist-test-issuer';

export interface TokenRequestRecord {
  method: string;
  /** Requested scopes. */
  scopes: string[];
  /** Who was authenticated (undefined: anonymous). */
  account: string | undefined;
  grantType: string | undefined;
  status: number;
}

export interface TokenIssuer {
  realm: string;
  certFile: string;
  requests: TokenRequestRecord[];
  /** Make an identity (refresh) token for a user, accepted by the OAuth2 POST grant. */
  issueRefreshToken(user: string): string;
  close(): Promise<void>;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** libtrust's KeyID for a public key (PEM of a key or certificate). */
export function libtrustKeyId(publicKeyOrCertPem: string): string {
  const der = createPublicKey(publicKeyOrCertPem).export({ type: 'spki', format: 'der' });
  const encoded = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)!.join(':');
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  // repository:<name>:<actions>; the name itself may contain ':' only for a port-bearing host, not here.
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenIssuer(
  dir: string,
  opts: { users: Record<string, string>; anonymousPull: boolean },
): Promise<TokenIssuer> {
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=hoist-test-token-issuer',
  ]);
  const certPem = await readFile(certFile, 'utf8');
  const privateKey = createPrivateKey(await readFile(keyFile, 'utf8'));
  const kid = libtrustKeyId(certPem);
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequestRecord[] = [];

  const makeJwt = (account: string | undefined, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.flatMap((s) => {
      const parsed = parseScope(s);
      if (!parsed) return [];
      const actions = account
        ? parsed.actions
        : opts.anonymousPull
          ? parsed.actions.filter((a) => a === 'pull')
          : [];
      return actions.length > 0 ? [{ ...parsed, actions }] : [];
    });
    const header = { typ: 'JWT', alg: 'RS256', kid };
    const claims = {
      iss: TOKEN_ISSUER,
      sub: account ?? '',
      aud: TOKEN_SERVICE,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const record: TokenRequestRecord = {
      method: req.method ?? 'GET',
      scopes: [],
      account: undefined,
      grantType: undefined,
      status: 200,
    };
    requests.push(record);
    const reply = (status: number, doc: unknown) => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
    };
    if (url.pathname !== '/token') return reply(404, { details: 'not found' });
    let account: string | undefined;
    let scopes: string[];
    let offline = false;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      record.grantType = form.get('grant_type') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      if (record.grantType === 'refresh_token') {
        account = refreshTokens.get(form.get('refresh_token') ?? '');
        if (!account) return reply(401, { details: 'invalid refresh token' });
      } else if (record.grantType === 'password') {
        const u = form.get('username') ?? '';
        if (opts.users[u] === undefined || opts.users[u] !== form.get('password'))
          return reply(401, { details: 'incorrect username or password' });
        account = u;
        offline = form.get('access_type') === 'offline';
      } else return reply(400, { details: 'unsupported grant_type' });
    } else {
      scopes = url.searchParams
        .getAll('scope')
        .flatMap((s) => s.split(' '))
        .filter(Boolean);
      offline = url.searchParams.get('offline_token') === 'true';
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const u = decoded.slice(0, colon);
        if (colon < 0 || opts.users[u] === undefined || opts.users[u] !== decoded.slice(colon + 1))
          return reply(401, { details: 'incorrect username or password' });
        account = u;
      }
    }
    record.scopes = scopes;
    record.account = account;
    const token = makeJwt(account, scopes);
    const doc: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: 300,
      issued_at: new Date().toISOString(),
    };
    if (offline && account) doc.refresh_token = issueRefreshToken(account);
    reply(200, doc);
  };

  const issueRefreshToken = (user: string) => {
    const t = `rt-${randomBytes(16).toString('hex')}`;
    refreshTokens.set(t, user);
    return t;
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    issueRefreshToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
