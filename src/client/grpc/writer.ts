// A ContentWriter over containerd's bidirectional Content.Write stream, as containerd's remote writer
// speaks it: STAT opens (or resumes) the ingest and says where it stands, WRITEs carry data at the
// current offset one message at a time, COMMIT verifies size and digest on the daemon and records the
// blob with its labels. An expected digest the daemon already has answers "already exists" at STAT.
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { ContentWriter, WriterOptions } from '../../api/content.ts';
import { WriteAction } from '../../api/gen/containerd/services/content/v1/content_pb.ts';
import type { Context } from '../../core/context.ts';
import { type Digest, DigestVerifier } from '../../core/digest.ts';
import { HoistError } from '../../core/errors.ts';
import type { GrpcChannel } from './channel.ts';

interface WriteResponse {
  offset: bigint;
  total: bigint;
  digest: string;
}

type Duplex = ClientDuplexStream<unknown, WriteResponse>;

/** One request, one response, strictly in turn (the protocol never pipelines). */
class Turns {
  readonly #call: Duplex;
  #waiting: { resolve: (r: WriteResponse) => void; reject: (e: unknown) => void } | undefined;
  #failed: unknown;
  readonly #map: (err: ServiceError) => HoistError;

  constructor(call: Duplex, map: (err: ServiceError) => HoistError) {
    this.#call = call;
    this.#map = map;
    call.on('data', (r: WriteResponse) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.resolve(r);
    });
    call.on('error', (err: ServiceError) => {
      this.#failed = this.#map(err);
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.reject(this.#failed);
    });
    call.on('end', () => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.reject(this.#failed ?? new HoistError('HOIST_INTERNAL', 'write stream ended without an answer'));
    });
  }

  send(req: Record<string, unknown>): Promise<WriteResponse> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#call.write(req);
    });
  }

  end(): void {
    this.#call.end();
  }
}

export async function openRemoteWriter(
  ch: GrpcChannel,
  ctx: Context,
  opts: WriterOptions,
): Promise<ContentWriter> {
  const turns = new Turns(ch.bidi(ctx) as Duplex, (err) => ch.mapError(err));
  const expected = opts.expected;
  const stat = await turns.send({
    action: WriteAction.STAT,
    ref: opts.ref,
    total: BigInt(expected?.size ?? 0),
    expected: expected?.digest ?? '',
  });
  let offset = Number(stat.offset);
  // Bytes this writer sends are hashed here; a resumed prefix is only known by the daemon's verification.
  const hash = new DigestVerifier();
  const resumedAt = offset;
  let done = false;
  return {
    ref: opts.ref,
    get offset() {
      return offset;
    },
    async write(chunk: Uint8Array) {
      if (chunk.byteLength === 0) return;
      const r = await turns.send({
        action: WriteAction.WRITE,
        ref: opts.ref,
        offset: BigInt(offset),
        data: chunk,
      });
      offset = Number(r.offset);
      hash.update(chunk);
    },
    digest(): Digest {
      if (resumedAt === 0) return hash.digest();
      if (expected) return expected.digest;
      throw new HoistError(
        'HOIST_FAILED_PRECONDITION',
        `ingest ${opts.ref} resumed at ${resumedAt}: digest unknown here`,
      );
    },
    async commit(size: number, expectedDigest?: Digest, labels: Record<string, string> = {}) {
      await turns.send({
        action: WriteAction.COMMIT,
        ref: opts.ref,
        // The current offset, as containerd's remote writer sends it: offset 0 would mean "start over".
        offset: BigInt(offset),
        total: BigInt(size),
        expected: expectedDigest ?? '',
        labels,
      });
      done = true;
      turns.end();
    },
    async close() {
      if (done) return;
      done = true;
      turns.end(); // the daemon keeps the ingest for a later resume
    },
    async truncate() {
      throw new HoistError(
        'HOIST_NOT_IMPLEMENTED',
        'truncating a remote ingest is not supported; abort it instead',
      );
    },
  };
}
