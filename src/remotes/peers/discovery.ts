// The peers a node pulls through, found rather than listed in hosts.toml: the union of what each source
// (static list, DNS, Kubernetes EndpointSlices) last answered, this node left out. The list is cached and
// looked up again once it is older than the refresh interval, in the background: a pull uses the list in
// hand, and only the very first pull waits for a lookup (at most `firstLookupMs`). A source that fails is
// warned about and keeps its last good answer (or none): discovery never fails a pull.
//
// Peers are pull-only mirrors (no `resolve`: tags are resolved upstream) tried before hosts.toml's hosts
// for the configured registries, at most `maxPerBlob` of them per blob, ranked by rendezvous hashing of
// the blob's digest (rendezvous.ts).
import type { RegistryHost } from '../hosts.ts';
import type { PeerMirrors } from '../types.ts';
import { rankPeers } from './rendezvous.ts';
import type { PeerSource } from './source.ts';

export interface PeerDiscoveryOptions {
  sources: readonly PeerSource[];
  /** Registries whose pulls go through peers: `docker.io`, `registry.example:5000`, or `*` for all. */
  registries: readonly string[];
  refreshMs: number;
  maxPerBlob: number;
  /** Is this address this node's own endpoint? */
  isSelf: (address: string) => boolean;
  /** Connect deadline for a peer (a peer that went away should cost little). */
  dialTimeoutMs?: number | undefined;
  /** How long the first pull waits for the first lookup before going on without peers (default 5 s). */
  firstLookupMs?: number;
  onWarning: (message: string) => void;
  /** The peer list changed (for an info log line). */
  onChange?: (peers: readonly string[]) => void;
}

const FIRST_LOOKUP_MS = 5_000;

export class PeerDiscovery implements PeerMirrors {
  readonly #o: PeerDiscoveryOptions;
  /** Each source's last good answer. */
  readonly #found = new Map<PeerSource, readonly string[]>();
  #peers: readonly string[] = [];
  #lookedUpAt = Number.NEGATIVE_INFINITY;
  #lookup: Promise<void> | undefined;
  #looked = false;

  constructor(opts: PeerDiscoveryOptions) {
    this.#o = opts;
  }

  /** Do pulls from this registry go through peers? (`*` asks: every registry?) */
  mirrors(registry: string): boolean {
    return this.#o.registries.some((r) => r === '*' || r === registry);
  }

  /** The peers in hand, looking them up again when stale (waited for only the first time). */
  async peers(): Promise<readonly string[]> {
    if (!this.#lookup && performance.now() - this.#lookedUpAt >= this.#o.refreshMs) {
      this.#lookedUpAt = performance.now();
      this.#lookup = this.refresh().finally(() => {
        this.#lookup = undefined;
      });
    }
    if (!this.#looked && this.#lookup) await this.#waitFirst(this.#lookup);
    return this.#peers;
  }

  /** The `host:port` of the peers to ask for `digest` of an image on `registry`, best first (capped). */
  async rankedFor(registry: string, digest: string): Promise<string[]> {
    if (!this.mirrors(registry)) return [];
    return rankPeers(await this.peers(), digest, this.#o.maxPerBlob);
  }

  async forBlob(registry: string, digest: string): Promise<RegistryHost[]> {
    const ranked = await this.rankedFor(registry, digest);
    return ranked.map((address) => peerHost(address, registry, this.#o.dialTimeoutMs));
  }

  /** The peers found so far, without looking them up (for the metrics). */
  get known(): readonly string[] {
    return this.#peers;
  }

  /** Connect deadline for a peer, when configured. */
  get dialTimeoutMs(): number | undefined {
    return this.#o.dialTimeoutMs;
  }

  /** Ask every source now; a failed one keeps its last answer. Never rejects. */
  async refresh(): Promise<void> {
    await Promise.all(
      this.#o.sources.map(async (source) => {
        try {
          this.#found.set(source, await source.discover());
        } catch (err) {
          const kept = this.#found.get(source)?.length ?? 0;
          this.#o.onWarning(
            `peer discovery: ${source.description}: ${(err as Error).message}; ` +
              (kept > 0 ? `keeping the ${kept} peers found before` : 'no peers from it for now'),
          );
        }
      }),
    );
    const next = [...new Set([...this.#found.values()].flat())].filter((a) => !this.#o.isSelf(a)).sort();
    const changed = next.length !== this.#peers.length || next.some((a, i) => a !== this.#peers[i]);
    this.#peers = next;
    this.#looked = true;
    if (changed) this.#o.onChange?.(next);
  }

  async #waitFirst(lookup: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#o.firstLookupMs ?? FIRST_LOOKUP_MS);
      timer.unref();
    });
    await Promise.race([lookup, waited]);
    clearTimeout(timer);
  }
}

/** A peer's registry endpoint as a pull-only mirror of `registry` (asked with `?ns=<registry>`). */
export function peerHost(address: string, registry: string, dialTimeoutMs?: number): RegistryHost {
  const host: RegistryHost = {
    host: address,
    scheme: 'http',
    path: '/v2',
    capabilities: ['pull'],
    headers: {},
    tls: { skipVerify: false },
    registry,
    mirror: true,
  };
  if (dialTimeoutMs !== undefined) host.dialTimeoutMs = dialTimeoutMs;
  return host;
}
