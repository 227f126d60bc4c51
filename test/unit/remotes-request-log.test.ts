// What the registry client logs: each request at debug (method, URL without credentials, status, time),
// each retry at warn, and nothing below the logger's level.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createLogger, type LogLevel } from '../../src/core/log.ts';
import { send } from '../../src/remotes/http.ts';
import { loggableUrl } from '../../src/remotes/log-url.ts';

test('a logged URL keeps no user, password or query value that may be a credential', () => {
  const url = new URL(
    'https://user:secret@blobs.example/v2/team/app/blobs/uploads/abc?_state=SESSION&X-Amz-Signature=SIG&digest=sha256:1&ns=docker.io',
  );
  assert.equal(
    loggableUrl(url),
    'https://blobs.example/v2/team/app/blobs/uploads/abc?_state=REDACTED&X-Amz-Signature=REDACTED&digest=sha256:1&ns=docker.io',
  );
  assert.equal(
    loggableUrl(
      new URL('https://auth.example/token?service=registry&scope=repository%3Ateam%2Fapp%3Apull&account=me'),
    ),
    'https://auth.example/token?service=registry&scope=repository:team/app:pull&account=REDACTED',
  );
});

/** A server that answers 503 `failures` times, then 200. */
async function flakyServer(failures: number) {
  let seen = 0;
  const server = createServer((_req, res) => {
    res.statusCode = seen++ < failures ? 503 : 200;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`) };
}

async function logOfGet(level: LogLevel): Promise<string[]> {
  const { server, url } = await flakyServer(1);
  const lines: string[] = [];
  try {
    const log = createLogger(level, (line) => lines.push(line), {}, 'logfmt');
    const res = await send({
      method: 'GET',
      url,
      headers: { authorization: 'Basic c2VjcmV0' },
      tls: { skipVerify: false },
      attempts: 3,
      baseDelayMs: 1,
      log,
    });
    res.body.resume();
    assert.equal(res.status, 200);
  } finally {
    server.close();
  }
  return lines;
}

test('debug: every request with its status and time; warn: the retry', async () => {
  const lines = await logOfGet('debug');
  assert.equal(lines.length, 3, lines.join(''));
  assert.match(
    lines[0]!,
    /level=debug msg="registry request" method=GET url=http:\/\/127\.0\.0\.1:\d+\/v2\/ status=503 duration_ms=\d+/,
  );
  assert.match(
    lines[1]!,
    /level=warn msg="registry request failed, retrying" method=GET url=\S+ status=503 attempt=1 of=3 retry_in_ms=\d+/,
  );
  assert.match(lines[2]!, /level=debug msg="registry request" method=GET url=\S+ status=200/);
  assert.ok(!lines.join('').includes('c2VjcmV0'), 'the Authorization header is not logged');
});

test('warn: only the retry; error: nothing', async () => {
  const warn = await logOfGet('warn');
  assert.equal(warn.length, 1);
  assert.match(warn[0]!, /level=warn msg="registry request failed, retrying"/);
  assert.deepEqual(await logOfGet('error'), []);
});
