// hoist serve's Prometheus endpoint (the real CLI, metrics_address from the config's [serve] table), each
// scrape read by the strict text-format parser: the families are all there and typed, a CRI pull moves the
// pull counters, the fetched bytes and the duration histogram, a failed pull is counted by its error code,
// gRPC calls by method and code, and a removal's synchronous GC by runs and reclaimed bytes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Metadata } from '@grpc/grpc-js';
import { ImageService } from '../../src/api/gen/k8s/cri/runtime/v1/api_pb.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { hostPlatform } from '../../src/core/platform.ts';
import { startFakeRegistry } from '../helpers/fake-registry.ts';
import { TestClients, unary } from '../helpers/grpc-client.ts';
import { tarOf } from '../helpers/image-builder.ts';
import { type Family, parsePrometheusText, sampleValue } from '../helpers/prom-text.ts';
import { startServe } from '../helpers/serve.ts';

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    })
      .on('error', reject)
      .end();
  });
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const desc = (mediaType: string, b: Buffer) => ({ mediaType, digest: sha(b), size: b.length });

test('/metrics: text format 0.0.4 that a strict parser accepts, and counters that follow a pull', {
  timeout: 90_000,
}, async () => {
  const reg = await startFakeRegistry();
  const dir = await mkdtemp(join(tmpdir(), 'hoist-metrics-'));
  const configFile = join(dir, 'config.toml');
  await writeFile(
    configFile,
    'snapshotter = "native"\n[serve]\nmetrics_address = "127.0.0.1:0"\nshutdown_timeout = "5s"\n',
  );
  const srv = await startServe({ dir, args: ['--config', configFile] });
  const clients = new TestClients(srv.socket);
  try {
    const port = Number(/"metrics":"127\.0\.0\.1:(\d+)"/.exec(srv.log())?.[1]);
    assert.ok(port > 0, `the serving line names the metrics address: ${srv.log()}`);

    // An image: one gzipped layer of 2 MiB, its config and manifest.
    const { os, architecture } = hostPlatform();
    const tar = await new Response(
      tarOf({ 'data.bin': Buffer.alloc(2 << 20, 7) }) as unknown as ReadableStream,
    ).arrayBuffer();
    const layer = gzipSync(Buffer.from(tar), { level: 0 });
    const config = Buffer.from(
      JSON.stringify({ os, architecture, rootfs: { type: 'layers', diff_ids: [sha(Buffer.from(tar))] } }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: desc(MediaType.OciConfig, config),
        layers: [desc(MediaType.OciLayerGzip, layer)],
      }),
    );
    reg.blob('m/app', layer);
    reg.blob('m/app', config);
    reg.manifest('m/app', { mediaType: MediaType.OciManifest, body: manifest }, 'v1');

    const scrape = async () => {
      const r = await get(port, '/metrics');
      assert.equal(r.status, 200);
      assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
      return parsePrometheusText(r.body);
    };
    const before = await scrape();
    const types = Object.fromEntries([...before.values()].map((f: Family) => [f.name, f.type]));
    assert.deepEqual(types, {
      hoist_pulls_started_total: 'counter',
      hoist_pulls_succeeded_total: 'counter',
      hoist_pulls_failed_total: 'counter',
      hoist_pulls_in_flight: 'gauge',
      hoist_pull_fetched_bytes_total: 'counter',
      hoist_pull_duration_seconds: 'histogram',
      hoist_gc_runs_total: 'counter',
      hoist_gc_reclaimed_bytes_total: 'counter',
      hoist_content_bytes: 'gauge',
      hoist_ingest_bytes: 'gauge',
      hoist_snapshot_bytes: 'gauge',
      hoist_store_usage_timestamp_seconds: 'gauge',
      hoist_leases: 'gauge',
      hoist_grpc_calls_total: 'counter',
      hoist_grpc_calls_in_flight: 'gauge',
      hoist_registry_requests_total: 'counter',
      hoist_peers: 'gauge',
      hoist_registry_sent_bytes_total: 'counter',
    });
    for (const f of before.values()) assert.ok(f.help, `${f.name} has HELP`);
    assert.equal(sampleValue(before, 'hoist_pulls_started_total'), 0);
    assert.equal(sampleValue(before, 'hoist_content_bytes'), 0, 'an empty store');

    const cri = clients.client(ImageService);
    const call = <T>(method: string, req: unknown) => unary<T>(cri, method, req, new Metadata());
    await call('pullImage', { image: { image: `${reg.host}/m/app:v1` } });
    await assert.rejects(call('pullImage', { image: { image: `${reg.host}/m/none:v1` } }));

    const after = await scrape();
    const v = (name: string, labels?: Record<string, string>) => sampleValue(after, name, labels);
    assert.equal(v('hoist_pulls_started_total'), 2);
    assert.equal(v('hoist_pulls_succeeded_total'), 1);
    assert.equal(v('hoist_pulls_failed_total', { code: 'HOIST_NOT_FOUND' }), 1);
    assert.equal(v('hoist_pulls_in_flight'), 0);
    assert.equal(v('hoist_pull_duration_seconds_count'), 2);
    const fetched = v('hoist_pull_fetched_bytes_total')!;
    assert.ok(
      fetched >= layer.length && fetched <= layer.length + config.length + manifest.length,
      `${fetched}`,
    );
    const method = '/runtime.v1.ImageService/PullImage';
    assert.equal(v('hoist_grpc_calls_total', { method, code: 'OK' }), 1);
    assert.equal(v('hoist_grpc_calls_total', { method, code: 'NotFound' }), 1);
    assert.ok(v('hoist_leases')! >= 0);

    // RemoveImage collects at once: a run, and the blobs' bytes reclaimed.
    await call('removeImage', { image: { image: `${reg.host}/m/app:v1` } });
    const gc = await scrape();
    assert.ok(sampleValue(gc, 'hoist_gc_runs_total', { result: 'success' })! >= 1);
    assert.ok(sampleValue(gc, 'hoist_gc_reclaimed_bytes_total', { kind: 'content' })! >= layer.length);
    assert.ok(sampleValue(gc, 'hoist_gc_reclaimed_bytes_total', { kind: 'snapshot' })! > 0);

    assert.equal((await get(port, '/')).status, 404);
    clients.close();
    assert.equal(await srv.stop(), 0);
  } finally {
    clients.close();
    await srv.cleanup();
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});
