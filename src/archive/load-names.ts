// Which names a loaded image gets. The rules (containerd's import, minus its date-stamped names):
//  1. `io.containerd.image.name` on an index.json entry is the full name (containerd, nerdctl, Docker ≥ 25,
//     hoist write it).
//  2. Otherwise `org.opencontainers.image.ref.name`, when it is a reference with a repository
//     (`app:1`, `host/app`, `repo@sha256:…`, as skopeo's `oci-archive:FILE:NAME` writes). A bare tag
//     (`v1`, `latest`) names no repository and so is not a name, unless a base name is given (ctr's
//     `--base-name`): then it becomes `<base>:<tag>`. ctr instead invents `import-<date>:<tag>`; hoist does
//     not make up names.
//  3. Every `RepoTags` entry of Docker's manifest.json, and every repo/tag of a legacy `repositories`.
//  4. An image with no name at all is kept under its ID, the record `sha256:<target hex>`, which
//     `hoist images` lists as `<none>` (and `hoist image prune` treats as dangling), like `docker load`.
import type { Digest } from '../core/digest.ts';
import { HoistError } from '../core/errors.ts';
import { formatReference, parseDockerRef, parseReference } from '../core/reference.ts';

export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

const BARE_TAG = /^[\w][\w.-]{0,127}$/;

function badName(name: string, where: string, err: unknown): HoistError {
  return new HoistError(
    'HOIST_MALFORMED_MANIFEST',
    `the archive names an image ${JSON.stringify(name)} (${where}), which is not a valid reference: ${(err as Error).message}`,
    { cause: err, hint: 'the archive is corrupt; nothing was loaded' },
  );
}

/** Normalise a full name (`alpine:3` → `docker.io/library/alpine:3`). */
export function normalizeLoadedName(name: string, where: string): string {
  try {
    return formatReference(parseDockerRef(name));
  } catch (err) {
    throw badName(name, where, err);
  }
}

/** The name an index.json entry gives its image, if any (rules 1 and 2). */
export function nameFromAnnotations(
  annotations: Record<string, string> | undefined,
  baseName?: string,
): string | undefined {
  const full = annotations?.[IMAGE_NAME_ANNOTATION];
  if (full) return normalizeLoadedName(full, IMAGE_NAME_ANNOTATION);
  const ref = annotations?.[REF_NAME_ANNOTATION];
  if (!ref) return undefined;
  const isBareTag = !/[/:@]/.test(ref) && BARE_TAG.test(ref);
  if (isBareTag) {
    if (!baseName) return undefined;
    return normalizeLoadedName(`${baseName}:${ref}`, `${REF_NAME_ANNOTATION} with base name ${baseName}`);
  }
  try {
    parseReference(ref);
  } catch {
    return undefined; // Not a reference: OCI allows free-form ref names; it names nothing hoist can use.
  }
  return normalizeLoadedName(ref, REF_NAME_ANNOTATION);
}

/** The record that keeps an image without names (rule 4). */
export function idName(target: Digest): string {
  return target;
}
