// Making an image whole before a command that reads every layer (unpack, mount, extract, convert, prepare):
// what the store lacks is fetched from the image's recorded registries, with progress, or with
// `--no-fetch` the command fails naming every missing digest and source (src/images/ensure-content.ts).
import type { Backend } from '../api/backend.ts';
import type { Context } from '../core/context.ts';
import type { Descriptor } from '../core/descriptor.ts';
import { tryParseReference } from '../core/reference.ts';
import { ensureContent } from '../images/ensure-content.ts';
import { type PlatformFlags, platformSelector } from './platform-flags.ts';
import { createProgress } from './progress/progress.ts';
import { type RegistryFlags, registryResolver } from './registry-flags.ts';
import type { Session } from './session.ts';

/**
 * Layers the store lacks (discarded after an earlier unpack, interrupted pulls) are fetched from the
 * image's distribution sources, with progress; `--no-fetch` fails instead, naming them.
 */
export function fetchMissing(
  s: Session,
  backend: Backend,
  target: Descriptor,
  flags: PlatformFlags & RegistryFlags & { fetch?: boolean; quiet?: boolean },
): (ctx: Context) => Promise<void> {
  return async (ctx) => {
    const progress = createProgress({
      stream: process.stderr,
      mode: flags.quiet ? 'quiet' : process.stderr.isTTY ? 'tty' : 'plain',
    });
    try {
      const named = (await backend.images.listByTarget(ctx, target.digest))
        .map((r) => tryParseReference(r.name))
        .find((r) => r !== undefined);
      await ensureContent(
        backend,
        await registryResolver(s.config, flags),
        ctx,
        target,
        platformSelector(flags),
        {
          noFetch: flags.fetch === false,
          progress: (key, state) => progress.update(key, state),
          concurrency: s.config.max_concurrent_downloads,
          ...(named ? { sourceRef: named } : {}),
        },
      );
    } finally {
      progress.done();
    }
  };
}
