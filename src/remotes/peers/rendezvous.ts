// Which peers a pull asks for a blob, and in what order: rendezvous (highest random weight) hashing of the
// blob's digest over the peers. Every node ranks the peers the same way for the same blob, so the first
// pull of a layer is spread over the peers by layer rather than always hitting the first one listed, and
// the cap bounds what a blob no peer has costs (each peer answers 404 once, then the upstream is asked).
// A peer joining or leaving only moves the blobs it ranks first, unlike a modulo over the list.
import { createHash } from 'node:crypto';

function weight(key: string, peer: string): bigint {
  return createHash('sha256').update(key).update('\0').update(peer).digest().readBigUInt64BE(0);
}

/** The `limit` peers with the highest weight for `key` (a digest), best first; ties broken by name. */
export function rankPeers(peers: readonly string[], key: string, limit: number): string[] {
  return [...new Set(peers)]
    .map((peer) => ({ peer, w: weight(key, peer) }))
    .sort((a, b) => (a.w === b.w ? (a.peer < b.peer ? -1 : 1) : a.w > b.w ? -1 : 1))
    .slice(0, Math.max(0, limit))
    .map((x) => x.peer);
}
