// A registry that challenges with garbage: any bytes in WWW-Authenticate (sent raw, as a broken or hostile
// server would), realms that are not URLs or point nowhere, token servers that answer with anything.
// Resolving must end, and only with a HoistError whose message is one line; never a TypeError.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { HoistError } from '../../src/core/errors.ts';
import { parseReference } from '../../src/core/reference.ts';
import { createResolver } from '../../src/remotes/resolver.ts';

interface Scenario {
  /** Raw bytes of the registry's WWW-Authenticate value(s). */
  challenges: string[];
  /** What the token endpoint answers. */
  tokenStatus: number;
  tokenBody: string;
}

let current: Scenario = { challenges: [], tokenStatus: 200, tokenBody: '' };
let server: Server;
let host: string;
const sockets = new Set<Socket>();

/** Answers every request from `current`, writing headers byte for byte (no validation in between). */
function answer(socket: Socket, head: string): void {
  const path = head.split(' ')[1] ?? '/';
  let out: string;
  if (path.startsWith('/token')) {
    const body = Buffer.from(current.tokenBody, 'latin1');
    out = `HTTP/1.1 ${current.tokenStatus} X\r\ncontent-type: application/json\r\ncontent-length: ${body.byteLength}\r\n\r\n${current.tokenBody}`;
  } else {
    const body = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}';
    const challenges = current.challenges.map((c) => `www-authenticate: ${c}\r\n`).join('');
    out = `HTTP/1.1 401 Unauthorized\r\n${challenges}content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
  }
  socket.write(Buffer.from(out, 'latin1'));
}

before(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) break;
        buf = buf.slice(end + 4 + length);
        answer(socket, head);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});

/** Resolve against the server as `current` says; returns the error (it must fail, and cleanly). */
async function resolveFails(creds: boolean): Promise<HoistError> {
  const resolver = createResolver({
    plainHttp: true,
    retries: 1,
    timeouts: { connectMs: 2000, headerMs: 2000, idleMs: 2000 },
    ...(creds ? { credentials: async () => ({ username: 'u', password: 'p' }) } : {}),
  });
  try {
    await resolver.resolve(parseReference(`${host}/a/b:1`));
  } catch (err) {
    assert.ok(err instanceof HoistError, `a HoistError, not ${(err as Error)?.stack ?? String(err)}`);
    assert.ok(err.message.length > 0);
    assert.doesNotMatch(err.message, /\n/);
    return err;
  }
  assert.fail('resolving against a registry that only says 401 succeeded');
}

const realm = () =>
  fc.oneof(
    // Mostly a realm that answers, so the token server's answers get tried too.
    { arbitrary: fc.constant(`http://HOST/token`), weight: 4 },
    fc.constant(`http://HOST/token?x="1"&scope=`),
    fc.constantFrom(
      '',
      'not a url',
      'http://',
      'http://[::1',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'ftp://127.0.0.1/token',
      'http://127.0.0.1:1/token',
      'http://HOST/token\u0000',
    ),
    fc.string({ maxLength: 30 }),
  );

const challengeArb = fc.oneof(
  { arbitrary: nearValidChallenge(), weight: 3 },
  // Garbage: any latin1 bytes but line breaks (which would end the header).
  fc.string({ maxLength: 80, unit: 'binary' }).map((s) =>
    Buffer.from(s, 'utf8')
      .toString('latin1')
      .replace(/[\r\n]/g, ''),
  ),
);

function nearValidChallenge() {
  // Near-valid: a scheme and parameters with hostile values.
  return fc
    .record({
      scheme: fc.constantFrom('Bearer', 'Bearer', 'Bearer', 'Basic', 'bearer', 'Digest', 'B\u00e9arer', ''),
      realm: realm(),
      service: fc.oneof(fc.constant('registry'), fc.string({ maxLength: 10 })),
      scope: fc.oneof(fc.constant('repository:a/b:pull'), fc.string({ maxLength: 10 })),
      quote: fc.constantFrom(true, true, true, false),
    })
    .map(({ scheme, realm, service, scope, quote }) => {
      const q = (v: string) => (quote ? `"${v.replace(/"/g, '\\"')}"` : v);
      return `${scheme} realm=${q(realm)},service=${q(service)},scope=${q(scope)}`;
    });
}

const tokenBody = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      '',
      'null',
      '[]',
      '"token"',
      '42',
      '{}',
      '{"token":null}',
      '{"token":5}',
      '{"token":""}',
      '{"token":"a\\r\\nx-injected: 1"}',
      '{"token":"ok","expires_in":1e309}',
      '{"token":"ok","expires_in":-5}',
      '{"access_token":{"nested":true}}',
      '{"token":"ok"}',
      '{"token":',
    ),
    weight: 3,
  },
  fc.string({ maxLength: 40 }),
);

test('garbage and near-valid challenges and token answers: a HoistError every time, never a hang', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(challengeArb, { minLength: 1, maxLength: 3 }),
      fc.constantFrom(200, 200, 200, 401, 403, 500, 302),
      tokenBody,
      fc.boolean(),
      async (challenges, tokenStatus, body, creds) => {
        current = {
          challenges: challenges.map((c) => c.replace(/HOST/g, host)),
          tokenStatus,
          tokenBody: body,
        };
        await resolveFails(creds);
      },
    ),
    { numRuns: 120 },
  );
});

test('a token with a line break in it is the token server’s error, not a network failure', async () => {
  current = {
    challenges: [`Bearer realm="http://${host}/token",service="registry"`],
    tokenStatus: 200,
    tokenBody: JSON.stringify({ token: 'abc\r\nx-injected: 1' }),
  };
  const err = await resolveFails(false);
  assert.equal(err.code, 'HOIST_REGISTRY', err.message);
  assert.match(err.message, /token server .* invalid token/);
});

test('a token server answering JSON null is the token server’s error (was a TypeError)', async () => {
  current = {
    challenges: [`Bearer realm="http://${host}/token",service="registry"`],
    tokenStatus: 200,
    tokenBody: 'null',
  };
  const err = await resolveFails(false);
  assert.equal(err.code, 'HOIST_REGISTRY', err.message);
  assert.match(err.message, /token server .* returned no token/);
});

test('a realm that is not http(s) is refused as such, not tried as a connection', async () => {
  current = {
    challenges: ['Bearer realm="file:///etc/passwd",service="registry"'],
    tokenStatus: 200,
    tokenBody: '{"token":"x"}',
  };
  const err = await resolveFails(false);
  assert.equal(err.code, 'HOIST_REGISTRY', err.message);
  assert.match(err.message, /invalid token realm "file:\/\/\/etc\/passwd"/);
});
