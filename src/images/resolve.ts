// Turning what a user typed (a name, an image ID, a short ID) into the image it means.

import type { ImageStore } from '../api/metadata.ts';
import type { Context } from '../core/context.ts';
import { isDigest } from '../core/digest.ts';
import { HoistError, notFound } from '../core/errors.ts';
import { formatReference, parseDockerRef, tryParseReference } from '../core/reference.ts';
import { groupByTarget, type ImageGroup } from './names.ts';

export interface Resolution {
  group: ImageGroup;
  /** Set when the user named one record (not an ID): only that name is meant. */
  name?: string;
}

const HEX_PREFIX = /^(?:sha256:)?([a-f0-9]{1,64})$/;

/** The record name a user string means, normalised (`alpine` → `docker.io/library/alpine:latest`). */
export function normalizeName(input: string): string {
  if (isDigest(input)) return input;
  const ref = tryParseReference(input);
  if (!ref) return input;
  return formatReference(parseDockerRef(input));
}

/**
 * Resolve a user argument. Order: an exact record name (normalised), then an image ID: a full or
 * prefix match on target digests, or on `sha256:<id>` alias names. An ambiguous prefix lists candidates.
 */
export async function resolveImage(images: ImageStore, ctx: Context, input: string): Promise<Resolution> {
  const name = normalizeName(input);
  try {
    const rec = await images.get(ctx, name);
    const group = groupByTarget(await images.listByTarget(ctx, rec.target.digest))[0];
    // Removed (or moved to another target) by someone else between the two reads.
    if (!group?.names.some((n) => n.name === rec.name))
      throw notFound(`image ${JSON.stringify(rec.name)}: not found`);
    return { group, name: rec.name };
  } catch (err) {
    if (!(err instanceof HoistError) || err.code !== 'HOIST_NOT_FOUND') throw err;
  }
  const m = HEX_PREFIX.exec(input);
  if (m) {
    const prefix = m[1]!;
    const all = groupByTarget(await images.list(ctx));
    const matches = all.filter(
      (g) =>
        g.target.slice('sha256:'.length).startsWith(prefix) ||
        g.names.some((n) => n.kind === 'id' && n.name.slice('sha256:'.length).startsWith(prefix)),
    );
    if (matches.length === 1) return { group: matches[0]! };
    if (matches.length > 1) {
      const lines = matches.map((g) => `  ${g.target}  ${g.names.map((n) => n.name).join(', ')}`).join('\n');
      throw new HoistError(
        'HOIST_AMBIGUOUS',
        `image ID prefix ${JSON.stringify(input)} matches ${matches.length} images:\n${lines}`,
        { hint: 'give more characters of the ID, or a name' },
      );
    }
  }
  throw notFound(
    `image ${JSON.stringify(input)}: not found`,
    'list images with `hoist images` (add --all for every name)',
  );
}
