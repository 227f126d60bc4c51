// Authentication against a real registry: htpasswd Basic auth and token auth (a JWT issuer run by the
// test), credentials from a docker config.json in a temp HOME, identity tokens, and `login`.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { parseReference } from '../../src/core/reference.ts';
import { dockerCredentials, login } from '../../src/remotes/credentials.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import type { Credentials } from '../../src/remotes/types.ts';
import { pushLayout, writeOciLayout } from '../helpers/image-builder.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';

const USER = { username: 'testuser', password: 'testpassword' };

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).byteLength;
  return n;
}

async function tempHome(auths: Record<string, unknown>): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'hoist-home-'));
  await mkdir(join(home, '.docker'));
  await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths }));
  return home;
}

function isCode(code: string, extra?: (err: HoistError) => void) {
  return (err: unknown) => {
    assert.ok(err instanceof HoistError, `expected a HoistError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    extra?.(err);
    return true;
  };
}

const fixed = (creds: Credentials | undefined) => async () => creds;

describe('Basic auth (htpasswd)', () => {
  let registry: TestRegistry;
  let work: string;
  before(async () => {
    registry = await startRegistry({ auth: 'basic' });
    work = await mkdtemp(join(tmpdir(), 'hoist-auth-'));
    await writeOciLayout(work, [{ tag: 'v1', image: { layers: [{ f: 'basic auth' }] } }]);
    await pushLayout(work, 'test/basic:v1', registry.host, { creds: USER });
  });
  after(async () => {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('pulls with credentials from config.json in $HOME', async () => {
    const home = await tempHome({
      [registry.host]: { auth: Buffer.from(`${USER.username}:${USER.password}`).toString('base64') },
    });
    try {
      const resolver = createResolver({
        plainHttp: true,
        credentials: dockerCredentials({ env: { HOME: home } }),
      });
      const ref = parseReference(`${registry.host}/test/basic:v1`);
      registry.resetStats();
      const { descriptor } = await resolver.resolve(ref);
      assert.equal(await drain(await resolver.fetcher(ref).fetch(descriptor)), descriptor.size);
      const reqs = registry.stats().requests;
      // first an anonymous attempt answered 401, then authorized requests only
      assert.equal(reqs[0]!.status, 401);
      assert.ok(reqs.slice(1).every((r) => r.authorized && r.status === 200));
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test('wrong credentials → HOIST_UNAUTHORIZED with a login hint', async () => {
    const resolver = createResolver({
      plainHttp: true,
      credentials: fixed({ username: 'testuser', password: 'wrong' }),
    });
    await assert.rejects(
      resolver.resolve(parseReference(`${registry.host}/test/basic:v1`)),
      isCode('HOIST_UNAUTHORIZED', (err) => {
        assert.match(err.message, new RegExp(registry.host.replace(/\./g, '\\.')));
        assert.equal(err.hint, `log in with: hoist login ${registry.host}`);
      }),
    );
  });

  test('no credentials → HOIST_UNAUTHORIZED', async () => {
    const resolver = createResolver({ plainHttp: true });
    await assert.rejects(
      resolver.resolve(parseReference(`${registry.host}/test/basic:v1`)),
      isCode('HOIST_UNAUTHORIZED'),
    );
  });

  test('login verifies credentials before writing config.json (0600, other keys kept)', async () => {
    const home = await tempHome({ 'other.example': { auth: 'b3RoZXI6eA==' } });
    const configPath = join(home, '.docker', 'config.json');
    try {
      await assert.rejects(
        login(registry.host, { username: 'testuser', password: 'nope' }, { configPath, plainHttp: true }),
        isCode('HOIST_UNAUTHORIZED'),
      );
      const untouched = JSON.parse(await readFile(configPath, 'utf8'));
      assert.deepEqual(Object.keys(untouched.auths), ['other.example']);
      await login(registry.host, USER, { configPath, plainHttp: true });
      const doc = JSON.parse(await readFile(configPath, 'utf8'));
      assert.deepEqual(Object.keys(doc.auths).sort(), [registry.host, 'other.example'].sort());
      assert.equal(Buffer.from(doc.auths[registry.host].auth, 'base64').toString(), 'testuser:testpassword');
      assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('token auth (Bearer, JWT issuer in the test process)', () => {
  let registry: TestRegistry;
  let work: string;
  before(async () => {
    registry = await startRegistry({ auth: 'token' });
    work = await mkdtemp(join(tmpdir(), 'hoist-token-'));
    await writeOciLayout(work, [{ tag: 'v1', image: { layers: [{ f: 'token auth' }] } }]);
    await pushLayout(work, 'test/token:v1', registry.host, { creds: USER });
  });
  after(async () => {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('pulls with username/password: one token per scope, reused', async () => {
    const resolver = createResolver({ plainHttp: true, credentials: fixed(USER) });
    const ref = parseReference(`${registry.host}/test/token:v1`);
    registry.resetStats();
    const { descriptor } = await resolver.resolve(ref);
    assert.equal(await drain(await resolver.fetcher(ref).fetch(descriptor)), descriptor.size);
    await resolver.resolve(ref);
    const tokens = registry.stats().tokenRequests;
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0]!.account, 'testuser');
    assert.deepEqual(tokens[0]!.scopes, ['repository:test/token:pull']);
  });

  test('identity token → OAuth2 refresh_token POST', async () => {
    const identityToken = registry.tokenIssuer!.issueRefreshToken('testuser');
    const resolver = createResolver({ plainHttp: true, credentials: fixed({ identityToken }) });
    registry.resetStats();
    const { descriptor } = await resolver.resolve(parseReference(`${registry.host}/test/token:v1`));
    assert.ok(descriptor.size > 0);
    const [req] = registry.stats().tokenRequests;
    assert.equal(req?.method, 'POST');
    assert.equal(req?.grantType, 'refresh_token');
    assert.equal(req?.account, 'testuser');
  });

  test('anonymous (no pull access) → HOIST_UNAUTHORIZED', async () => {
    const resolver = createResolver({ plainHttp: true });
    await assert.rejects(
      resolver.resolve(parseReference(`${registry.host}/test/token:v1`)),
      isCode('HOIST_UNAUTHORIZED'),
    );
  });

  test('wrong password → HOIST_UNAUTHORIZED from the token server', async () => {
    const resolver = createResolver({
      plainHttp: true,
      credentials: fixed({ username: 'testuser', password: 'bad' }),
    });
    await assert.rejects(
      resolver.resolve(parseReference(`${registry.host}/test/token:v1`)),
      isCode('HOIST_UNAUTHORIZED', (err) => assert.match(err.message, /authentication failed/)),
    );
  });

  test('login checks the credentials with the token server', async () => {
    const home = await mkdtemp(join(tmpdir(), 'hoist-login-'));
    const configPath = join(home, 'config.json');
    try {
      await assert.rejects(
        login(registry.host, { username: 'testuser', password: 'bad' }, { configPath, plainHttp: true }),
        isCode('HOIST_UNAUTHORIZED'),
      );
      await assert.rejects(stat(configPath), { code: 'ENOENT' });
      await login(registry.host, USER, { configPath, plainHttp: true });
      const doc = JSON.parse(await readFile(configPath, 'utf8'));
      assert.ok(doc.auths[registry.host].auth);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
