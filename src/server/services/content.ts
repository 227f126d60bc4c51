// Content service: blobs by digest (Info, Update, List, Delete, Read) and ingests by ref (Status,
// ListStatuses, Abort; Write is in content-write.ts). Digest problems are InvalidArgument with
// containerd's wording; a Read past the end is OutOfRange; Delete publishes `/content/delete`.

import type { ContentInfo, IngestStatus } from '../../api/content.ts';
import { fromInt64, int64, timestamp } from '../../api/convert.ts';
import { ContentDeleteSchema } from '../../api/gen/containerd/events/content_pb.ts';
import { Content } from '../../api/gen/containerd/services/content/v1/content_pb.ts';
import { type Digest, isDigest } from '../../core/digest.ts';
import { HoistError, invalidArgument } from '../../core/errors.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';
import { contentWriteHandler } from './content-write.ts';

/** containerd sends content lists in batches of this many infos per stream message. */
export const LIST_BATCH = 100;

/** A digest from a request, or containerd's `"<d>" failed validation`. */
export function requestDigest(value: string): Digest {
  if (!isDigest(value)) throw invalidArgument(`${JSON.stringify(value)} failed validation: invalid argument`);
  return value;
}

export const infoToProto = (i: ContentInfo) => ({
  digest: i.digest,
  size: int64(i.size),
  createdAt: timestamp(i.createdAt),
  updatedAt: timestamp(i.updatedAt),
  labels: { ...i.labels },
});

const statusToProto = (s: IngestStatus) => ({
  startedAt: timestamp(s.startedAt),
  updatedAt: timestamp(s.updatedAt),
  ref: s.ref,
  offset: int64(s.offset),
  total: int64(s.total),
  expected: s.expected ?? '',
});

export function contentService(deps: ServerDeps): RegisteredService {
  const content = deps.backend.content;
  return defineService('content', Content, {
    info: async (req, call) => ({
      info: infoToProto(await content.info(call.store(), requestDigest(req.digest))),
    }),

    update: async (req, call) => {
      const digest = requestDigest(req.info?.digest ?? '');
      const info = await content.update(
        call.store(),
        { digest, labels: req.info?.labels ?? {} },
        req.updateMask?.paths ?? [],
      );
      return { info: infoToProto(info) };
    },

    list: async (req, call, send) => {
      const infos = await content.list(call.store(), req.filters);
      for (let i = 0; i < infos.length; i += LIST_BATCH)
        await send({ info: infos.slice(i, i + LIST_BATCH).map(infoToProto) });
    },

    delete: async (req, call) => {
      const ctx = call.store();
      const digest = requestDigest(req.digest);
      await content.delete(ctx, digest);
      deps.events.publish(ctx.namespace, '/content/delete', ContentDeleteSchema, { digest });
      deps.gc.schedule();
      return {};
    },

    read: async (req, call, send) => {
      const ctx = call.store();
      const digest = requestDigest(req.digest);
      const info = await content.info(ctx, digest);
      const offset = Math.max(0, fromInt64(req.offset, 'offset'));
      if (offset > info.size)
        throw new HoistError(
          'HOIST_OUT_OF_RANGE',
          `read past object length ${info.size} bytes: out of range`,
        );
      let size = fromInt64(req.size, 'size');
      if (size <= 0 || offset + size > info.size) size = info.size - offset;
      if (size === 0) return;
      const stream = await content.reader(ctx, digest, { offset, length: size });
      let at = offset;
      try {
        for await (const chunk of stream) {
          const data = chunk as Buffer;
          await send({ offset: int64(at), data });
          at += data.byteLength;
        }
      } finally {
        stream.destroy();
      }
    },

    status: async (req, call) => {
      try {
        return { status: statusToProto(await content.status(call.store(), req.ref)) };
      } catch (err) {
        if (err instanceof HoistError)
          throw new HoistError(
            err.code,
            `could not get status for ref ${JSON.stringify(req.ref)}: ${err.message}`,
          );
        throw err;
      }
    },

    listStatuses: async (req, call) => ({
      statuses: (await content.listStatuses(call.store(), req.filters)).map(statusToProto),
    }),

    write: contentWriteHandler(deps),

    abort: async (req, call) => {
      await content.abort(call.store(), req.ref);
      return {};
    },
  });
}
