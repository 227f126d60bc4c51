// Chain IDs: the names of committed layer snapshots. chain[0] = diffID[0];
// chain[i] = sha256(chain[i-1] + " " + diffID[i]) (the OCI image spec's definition).
import { type Digest, sha256 } from '../core/digest.ts';

export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256(`${prev} ${d}`));
  }
  return out;
}

export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1);
}
