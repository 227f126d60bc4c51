// `hoist tag SRC DST`: another name on the same target.

import type { ImageRecord, ImageStore } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import { HoistError } from '../core/errors.ts';
import { formatReference, parseDockerRef } from '../core/reference.ts';
import { resolveImage } from './resolve.ts';

export async function tagImage(
  images: ImageStore,
  ctx: Context,
  src: string,
  dst: string,
): Promise<ImageRecord> {
  const r = await resolveImage(images, ctx, src);
  const source = r.group.names.find((n) => n.name === r.name) ?? r.group.names[0]!;
  const name = formatReference(parseDockerRef(dst));
  const record = { name, target: source.record.target, labels: { ...source.record.labels } };
  try {
    return await images.create(ctx, record);
  } catch (err) {
    if (err instanceof HoistError && err.code === 'HOIST_ALREADY_EXISTS') {
      return images.update(ctx, record, ['target']);
    }
    throw err;
  }
}
