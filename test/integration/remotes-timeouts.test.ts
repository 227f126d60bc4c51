// Registries that accept a connection and then say nothing: every phase has a deadline (connect, response
// headers, a stalled body), configurable in the config file, and running out is one HOIST_NETWORK error
// naming the host and the phase. The deadlines here are short; nothing asserts how long anything took.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import type { Descriptor } from '../../src/core/descriptor.ts';
import { parseDigest } from '../../src/core/digest.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { parseReference } from '../../src/core/reference.ts';
import { createResolver } from '../../src/remotes/resolver.ts';
import { startFakeServer } from '../helpers/fake-server.ts';
import { tempStore } from '../helpers/run-hoist.ts';

const SHORT = { connectMs: 300, headerMs: 300, idleMs: 300 };
/** Without deadlines these calls hang for minutes; the test fails at this limit instead. */
const LIMIT = { timeout: 30_000 };

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A TCP server that accepts and never writes a byte; counts connections. */
async function silentServer(): Promise<{ host: string; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, connections: () => connections };
}

function timeoutError(host: string, phase: RegExp, key: string) {
  return (err: unknown) => {
    assert.ok(err instanceof HoistError, `a HoistError, not ${String(err)}`);
    assert.equal(err.code, 'HOIST_NETWORK', err.message);
    assert.ok(err.message.includes(host), `names the host: ${err.message}`);
    assert.match(err.message, phase);
    assert.doesNotMatch(err.message, /\n/);
    assert.ok(err.hint?.includes(key), `the hint names ${key}: ${err.hint}`);
    return true;
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function blobOf(bytes: Buffer): Descriptor {
  return {
    mediaType: MediaType.OciLayerGzip,
    digest: parseDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`),
    size: bytes.byteLength,
  };
}

describe('registry deadlines', () => {
  test(
    'a server that accepts and never answers: a header timeout naming the host, not retried',
    LIMIT,
    async () => {
      const s = await silentServer();
      const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1, timeouts: SHORT });
      await assert.rejects(
        resolver.resolve(parseReference(`${s.host}/a/b:c`)),
        timeoutError(s.host, /no response headers .*header timeout/, 'registry.header_timeout'),
      );
      assert.equal(s.connections(), 1, 'a deadline that passed is not waited out again');
    },
  );

  test('a TLS handshake that never completes: a connect timeout', LIMIT, async () => {
    const s = await silentServer();
    const resolver = createResolver({ retryBaseDelayMs: 1, timeouts: SHORT });
    await assert.rejects(
      resolver.resolve(parseReference(`${s.host}/a/b:c`)),
      timeoutError(s.host, /no connection .*connect timeout/, 'registry.connect_timeout'),
    );
  });

  test(
    'a manifest body that stalls: an idle timeout, a HoistError (was a raw socket error)',
    LIMIT,
    async () => {
      const server = await startFakeServer((req, res) => {
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': MediaType.OciManifest }); // no digest: hoist GETs
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': MediaType.OciManifest, 'content-length': '500' });
        res.write('{"schemaVersion":');
      });
      try {
        const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1, timeouts: SHORT });
        await assert.rejects(
          resolver.resolve(parseReference(`${server.host}/a/b:c`)),
          timeoutError(server.host, /no data .*idle timeout/, 'registry.idle_timeout'),
        );
      } finally {
        await server.close();
      }
    },
  );

  test('a blob body that stalls: resumed while it moves, then an idle timeout', LIMIT, async () => {
    const blob = Buffer.alloc(4096, 7);
    const server = await startFakeServer((req, res) => {
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      // The first answer moves 100 bytes then stalls; the resumed one stalls at once.
      res.writeHead(start === 0 ? 200 : 206, {
        'content-length': String(blob.byteLength - start),
        ...(start === 0
          ? {}
          : { 'content-range': `bytes ${start}-${blob.byteLength - 1}/${blob.byteLength}` }),
      });
      if (start === 0) res.write(blob.subarray(0, 100));
      else res.flushHeaders();
    });
    try {
      const resolver = createResolver({ plainHttp: true, retryBaseDelayMs: 1, timeouts: SHORT });
      const stream = await resolver.fetcher(parseReference(`${server.host}/a/b:c`)).fetch(blobOf(blob));
      await assert.rejects(
        readAll(stream),
        timeoutError(server.host, /no data .*idle timeout/, 'registry.idle_timeout'),
      );
      const gets = server.requests.filter((r) => r.method === 'GET');
      assert.equal(gets.length, 2, 'one resume after progress, none after a stall without progress');
      assert.equal(gets[1]!.headers.range, 'bytes=100-');
    } finally {
      await server.close();
    }
  });

  test('a body the consumer has not read yet is not a stalled server', LIMIT, async () => {
    const blob = Buffer.alloc(1 << 20, 9);
    const server = await startFakeServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(blob.byteLength) });
      res.end(blob);
    });
    try {
      const resolver = createResolver({
        plainHttp: true,
        timeouts: { connectMs: 1000, headerMs: 1000, idleMs: 100 },
      });
      const stream = await resolver.fetcher(parseReference(`${server.host}/a/b:c`)).fetch(blobOf(blob));
      // Several idle deadlines pass while nobody reads: the full buffers are ours, not the server's.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await readAll(stream), blob);
    } finally {
      await server.close();
    }
  });

  test(
    'hoist pull reads the deadlines from the config file and says which phase ran out',
    LIMIT,
    async () => {
      const s = await silentServer();
      const h = await tempStore();
      try {
        await mkdir(h.home, { recursive: true });
        const config = join(h.home, 'config.toml');
        await writeFile(
          config,
          `version = 1\n[registry]\nheader_timeout = "300ms"\nplain_http = ["${s.host}"]\n`,
        );
        const r = await h.run('--config', config, 'pull', `${s.host}/app/x:1`);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `^hoist: registry ${s.host.replace(/\./g, '\\.')} did not answer in time: no response headers`,
            'm',
          ),
        );
        assert.match(r.stderr, /registry\.header_timeout/);
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.equal((await h.ok('images', '-q')).trim(), '');
      } finally {
        await h.cleanup();
      }
    },
  );
});
