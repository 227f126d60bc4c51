// Digests: parsing, computing, and the one streaming verifier every byte path in hoist goes through.
import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import { HoistError, invalidArgument } from './errors.ts';

/** A validated content digest such as `sha256:9f86…` (branded so raw strings cannot slip through). */
export type Digest = string & { readonly __digest: unique symbol };

const ALGORITHMS: Record<string, number> = { sha256: 64, sha512: 128 };
const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export function isDigest(value: string): value is Digest {
  const m = DIGEST_RE.exec(value);
  if (!m) return false;
  const len = ALGORITHMS[m[1]!];
  return len !== undefined && m[2]!.length === len && /^[a-f0-9]+$/.test(m[2]!);
}

/** Parse a digest string; throws a clear invalid-argument error otherwise. */
export function parseDigest(value: string): Digest {
  if (isDigest(value)) return value;
  const m = DIGEST_RE.exec(value);
  if (m && ALGORITHMS[m[1]!] === undefined) throw invalidArgument(`unsupported digest algorithm: ${value}`);
  throw invalidArgument(`invalid digest ${JSON.stringify(value)}: expected sha256:<64 hex characters>`);
}

export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** Short form used in tables: the first 12 hex characters. */
export function shortId(d: string): string {
  const hex = d.includes(':') ? d.slice(d.indexOf(':') + 1) : d;
  return hex.slice(0, 12);
}

/**
 * Incrementally hashes bytes and checks them against an expected digest and size.
 * Used by the content writer, the registry fetcher and archive readers alike.
 */
export class DigestVerifier {
  #hash: Hash;
  #algorithm: string;
  #bytes = 0;

  constructor(algorithm = 'sha256') {
    if (ALGORITHMS[algorithm] === undefined)
      throw invalidArgument(`unsupported digest algorithm: ${algorithm}`);
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  static for(expected: Digest | undefined): DigestVerifier {
    return new DigestVerifier(expected ? digestAlgorithm(expected) : 'sha256');
  }

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.byteLength;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The digest of everything seen so far (finalises a copy; the verifier stays usable). */
  digest(): Digest {
    return `${this.#algorithm}:${this.#hash.copy().digest('hex')}` as Digest;
  }

  /** Throws HOIST_DIGEST_MISMATCH / HOIST_SIZE_MISMATCH naming what was expected and what arrived. */
  verify(expected: { digest?: Digest | undefined; size?: number | undefined }, what = 'content'): Digest {
    const actual = this.digest();
    if (expected.size !== undefined && expected.size >= 0 && this.#bytes !== expected.size) {
      throw new HoistError(
        'HOIST_SIZE_MISMATCH',
        `${what} ${expected.digest ?? actual}: unexpected size ${this.#bytes}, expected ${expected.size}`,
      );
    }
    if (expected.digest !== undefined && expected.digest !== actual) {
      throw new HoistError(
        'HOIST_DIGEST_MISMATCH',
        `${what} digest mismatch: expected ${expected.digest}, got ${actual}; the data was not stored`,
        {
          hint: 'the source is serving corrupt data; report it to the registry operator or try another mirror',
        },
      );
    }
    return actual;
  }
}

/** A pass-through stream stage that hashes what flows by (e.g. a layer's uncompressed tar: its diffID). */
export function hashingStage(verifier: DigestVerifier): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      verifier.update(chunk);
      done(null, chunk);
    },
  });
}
