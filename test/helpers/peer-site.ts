// A site for the peer-discovery tests: an upstream registry (behind the counting proxy) holding a
// two-layer image, and node A, a hoist serve daemon with its registry endpoint on 127.0.0.2:<port> that
// has pulled the image from the upstream. Other nodes listen on the same port of other loopback addresses
// (127/8 is all loopback on Linux), as the pods behind a headless Service do. Config files name no
// hosts.toml (an empty certs.d): whatever peers a pull uses, it found.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuiltEntry, pushLayout, writeOciLayout } from './image-builder.ts';
import { parsePrometheusText } from './prom-text.ts';
import { type RequestRecord, startRegistry, type TestRegistry } from './registry.ts';
import { MAIN, NODE } from './run-hoist.ts';
import { type CommandResult, type ServedStore, startServe } from './serve.ts';

const MiB = 1024 * 1024;

export interface PeerSite {
  work: string;
  reg: TestRegistry;
  /** `<upstream>/team/app:1`. */
  ref: string;
  /** The registry port every node listens on, each on its own loopback address. */
  port: number;
  /** Node A, at 127.0.0.2:<port>, holding the image. */
  a: ServedStore;
  layerBytes: number;
  /** The image's layers. */
  layers: { digest: string; size: number }[];
  /** A hoist serve daemon, stopped with the site. */
  startNode(args: string[]): Promise<ServedStore>;
  /** A config file: snapshotter native, an empty certs.d, then `toml`. */
  config(name: string, toml: string): Promise<string>;
  /** `hoist --root <root> --config <file> pull <ref>` in a process of its own. */
  pull(root: string, configFile: string): Promise<CommandResult>;
  /** The upstream was asked for the tag (peers are pull-only) and sent no blob since resetStats. */
  assertOnlyTagsUpstream(what: string): void;
  close(): Promise<void>;
}

export const blobBytes = (rs: RequestRecord[]) =>
  rs.filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).reduce((n, r) => n + r.bytes, 0);

async function freePortOn(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** A daemon's /metrics, parsed (it must have been started with --metrics-address 127.0.0.1:0). */
export function scrape(node: ServedStore): Promise<ReturnType<typeof parsePrometheusText>> {
  const port = Number(/"metrics":"127\.0\.0\.1:(\d+)"/.exec(node.log())?.[1]);
  assert.ok(port > 0, `the serving line names the metrics address: ${node.log()}`);
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(parsePrometheusText(body)));
    })
      .on('error', reject)
      .end();
  });
}

export async function startPeerSite(): Promise<PeerSite> {
  const work = await mkdtemp(join(tmpdir(), 'hoist-peer-site-'));
  const daemons: ServedStore[] = [];
  const [image] = (await writeOciLayout(join(work, 'layout'), [
    { tag: 'app', image: { layers: [{ randomBytes: 3 * MiB }, { randomBytes: MiB }] } },
  ])) as [BuiltEntry];
  const reg = await startRegistry();
  await pushLayout(join(work, 'layout'), 'team/app:1', reg.registryHost, { srcTag: 'app' });
  const ref = `${reg.host}/team/app:1`;
  const port = await freePortOn('127.0.0.2');
  const startNode = async (args: string[]) => {
    const node = await startServe({ args });
    daemons.push(node);
    return node;
  };
  const a = await startNode(['--registry-address', `127.0.0.2:${port}`, '--metrics-address', '127.0.0.1:0']);
  const pa = await a.hoist('pull', '--progress', 'plain', ref);
  assert.equal(pa.code, 0, pa.stderr);
  return {
    work,
    reg,
    ref,
    port,
    a,
    layerBytes: image.images[0]!.layers.reduce((n, l) => n + l.size, 0),
    layers: image.images[0]!.layers.map((l) => ({ digest: l.digest, size: l.size })),
    startNode,
    async config(name, toml) {
      const certs = join(work, `${name}-certs.d`);
      await mkdir(certs, { recursive: true });
      const file = join(work, `${name}.toml`);
      await writeFile(file, `snapshotter = "native"\n[registry]\nconfig_path = "${certs}"\n${toml}`);
      return file;
    },
    pull(root, configFile) {
      return new Promise((resolve) => {
        const env = { ...process.env };
        for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'HOIST_ADDRESS', 'HOIST_NAMESPACE']) delete env[k];
        execFile(
          NODE,
          [MAIN, '--root', root, '--config', configFile, 'pull', '--progress', 'plain', ref],
          { env, maxBuffer: 64 << 20 },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        );
      });
    },
    assertOnlyTagsUpstream(what) {
      const upstream = reg.stats().requests;
      assert.equal(blobBytes(upstream), 0, `${what}: no blob bytes from the upstream`);
      assert.ok(
        upstream.some((r) => /\/manifests\/1$/.test(r.path)),
        `${what}: the tag resolved upstream`,
      );
    },
    async close() {
      for (const d of daemons) await d.cleanup();
      await reg.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}
