// Images service: image records with containerd's validation, field masks and filter syntax (the store's),
// `/images/*` events, and Delete with `sync` running garbage collection before it answers.

import { descriptorFromProto, descriptorToProto, timestamp } from '../../api/convert.ts';
import {
  ImageCreateSchema,
  ImageDeleteSchema,
  ImageUpdateSchema,
} from '../../api/gen/containerd/events/image_pb.ts';
import { type Image, Images } from '../../api/gen/containerd/services/images/v1/images_pb.ts';
import type { ImageRecord } from '../../api/metadata.ts';
import { parseDigest } from '../../core/digest.ts';
import { invalidArgument } from '../../core/errors.ts';
import { defineService, type RegisteredService, type ServerDeps } from '../service.ts';

const toProto = (r: ImageRecord) => ({
  name: r.name,
  labels: { ...r.labels },
  target: descriptorToProto(r.target),
  createdAt: timestamp(r.createdAt),
  updatedAt: timestamp(r.updatedAt),
});

/** The request's image; created_at/updated_at from clients are ignored (the store keeps its own). */
function fromProto(image: Image | undefined): Omit<ImageRecord, 'createdAt' | 'updatedAt'> {
  const name = image?.name ?? '';
  if (!name) throw invalidArgument('Image.Name required: invalid argument');
  return { name, labels: { ...(image?.labels ?? {}) }, target: descriptorFromProto(image?.target) };
}

export function imagesService(deps: ServerDeps): RegisteredService {
  const images = deps.backend.images;
  return defineService('images', Images, {
    get: async (req, call) => ({ image: toProto(await images.get(call.store(), req.name)) }),

    list: async (req, call) => ({ images: (await images.list(call.store(), req.filters)).map(toProto) }),

    create: async (req, call) => {
      const ctx = call.store();
      const created = await images.create(ctx, fromProto(req.image));
      deps.events.publish(ctx.namespace, '/images/create', ImageCreateSchema, {
        name: created.name,
        labels: created.labels,
      });
      return { image: toProto(created) };
    },

    update: async (req, call) => {
      const ctx = call.store();
      const updated = await images.update(ctx, fromProto(req.image), req.updateMask?.paths ?? []);
      deps.events.publish(ctx.namespace, '/images/update', ImageUpdateSchema, {
        name: updated.name,
        labels: updated.labels,
      });
      return { image: toProto(updated) };
    },

    delete: async (req, call) => {
      const ctx = call.store();
      const target = req.target ? parseDigest(req.target.digest) : undefined;
      await images.delete(ctx, req.name, target ? { target } : undefined);
      deps.events.publish(ctx.namespace, '/images/delete', ImageDeleteSchema, { name: req.name });
      if (req.sync) await deps.gc.collectNow();
      else deps.gc.schedule();
      return {};
    },
  });
}
