// Content.Write: the bidirectional ingest protocol ctr and containerd's remote content writer speak.
//   1. The first message names the ingest (`ref`, else InvalidArgument) and may declare the expected
//      digest and total; the writer is opened (resuming what an earlier stream left), or the stream
//      ends at once with AlreadyExists when the blob is already there (clients treat that as success),
//      or with Unavailable when another writer holds the ref (clients retry).
//   2. Every message gets exactly one reply, in order. STAT reports offset, total, running digest and
//      times; WRITE appends at the current offset (offset 0 on a non-empty ingest restarts it, any other
//      offset must be the current one, else OutOfRange); COMMIT may carry data too, then verifies size
//      and digest (FailedPrecondition on mismatch), records the blob with its labels, replies and ends.
//   3. A later message carrying an expected digest that has meanwhile been committed aborts the ingest
//      with AlreadyExists. A client that closes (or is cancelled) before COMMIT leaves the ingest to resume.

import type { ContentStore, ContentWriter } from '../../api/content.ts';
import { fromInt64, int64, timestamp } from '../../api/convert.ts';
import {
  WriteAction,
  type WriteContentRequestSchema,
  type WriteContentResponseSchema,
} from '../../api/gen/containerd/services/content/v1/content_pb.ts';
import type { Context } from '../../core/context.ts';
import { type Digest, parseDigest } from '../../core/digest.ts';
import { alreadyExists, HoistError, invalidArgument, isNotFound } from '../../core/errors.ts';
import { preciseNow } from '../../core/time.ts';
import type { BidiHandler } from '../rpc.ts';
import type { ServerDeps } from '../service.ts';

type Handler = BidiHandler<typeof WriteContentRequestSchema, typeof WriteContentResponseSchema>;

async function committed(content: ContentStore, ctx: Context, d: Digest): Promise<boolean> {
  try {
    await content.info(ctx, d);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export function contentWriteHandler(deps: ServerDeps): Handler {
  const content = deps.backend.content;
  return async (stream, call) => {
    let req = await stream.recv();
    if (req === undefined) return;
    const ref = req.ref;
    if (!ref) throw invalidArgument('first message must have a reference: invalid argument');
    const ctx = call.store();
    let total = Math.max(0, fromInt64(req.total, 'total'));
    let expected = req.expected ? parseDigest(req.expected) : undefined;
    const writer: ContentWriter = await content.writer(ctx, {
      ref,
      ...(expected ? { expected: { digest: expected, size: total } } : {}),
    });
    let open = true;
    deps.log.debug('ingest opened', { namespace: ctx.namespace, ref, offset: writer.offset });
    try {
      const st = await content.status(ctx, ref).catch(() => undefined);
      const startedAt = st?.startedAt ?? preciseNow();
      let updatedAt = st?.updatedAt ?? startedAt;
      for (let first = true; ; first = false) {
        // The writer's open already answered "already exists" for the first message's digest.
        if (req.expected && !first) {
          const d = parseDigest(req.expected);
          expected = d;
          if (await committed(content, ctx, d)) {
            open = false;
            await writer.close();
            await content.abort(ctx, ref).catch((err: unknown) => {
              if (!isNotFound(err)) deps.log.warn('abort after already-exists failed', { ref, error: err });
            });
            throw alreadyExists(`blob with expected digest ${d} exists: already exists`);
          }
        }
        if (req.total > 0n) total = fromInt64(req.total, 'total');

        const action = req.action;
        if (action === WriteAction.STAT) {
          await stream.send({
            action,
            offset: int64(writer.offset),
            total: int64(total),
            digest: writer.digest(),
            startedAt: timestamp(startedAt),
            updatedAt: timestamp(updatedAt),
          });
        } else if (action === WriteAction.WRITE || action === WriteAction.COMMIT) {
          const offset = fromInt64(req.offset, 'offset');
          if (offset > 0 && offset !== writer.offset)
            throw new HoistError(
              'HOIST_OUT_OF_RANGE',
              `write @${offset} must occur at current offset ${writer.offset}: out of range`,
            );
          if (offset === 0 && writer.offset > 0) await writer.truncate(0);
          if (req.data.byteLength > 0) {
            await writer.write(req.data);
            updatedAt = preciseNow();
          }
          if (action === WriteAction.COMMIT) {
            open = false;
            await writer.commit(total, expected, req.labels);
          }
          await stream.send({
            action,
            offset: int64(writer.offset),
            total: int64(total),
            digest: writer.digest(),
            startedAt: timestamp(startedAt),
            updatedAt: timestamp(updatedAt),
          });
          if (action === WriteAction.COMMIT) return;
        } else {
          throw invalidArgument(`unknown write action ${action}: invalid argument`);
        }
        const next = await stream.recv();
        if (next === undefined) return;
        req = next;
      }
    } finally {
      // Not committed: keep the ingest (and release its lock) so a later stream resumes it.
      if (open) await writer.close();
    }
  };
}
