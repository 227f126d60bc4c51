// Paths inside an image archive. Nothing from an archive is ever written to the filesystem, but names
// still decide which blob is which, so a name that climbs out (`../x`), is absolute, or a link that points
// outside the archive is refused outright: an archive that tries it is hostile or broken.
import { HoistError } from '../core/errors.ts';

/** A name for a message: quoted, and cut short (a hostile archive's names may be megabytes long). */
export function quoteName(name: string): string {
  return name.length > 200
    ? `${JSON.stringify(name.slice(0, 200))}… (${name.length} characters)`
    : JSON.stringify(name);
}

function hostile(what: string): HoistError {
  return new HoistError('HOIST_INVALID_ARGUMENT', `refusing archive: ${what}`, {
    hint: 'the archive is corrupt or was crafted to escape its directory; nothing was loaded',
  });
}

/**
 * Normalise a tar entry name: strip `./` and duplicate or trailing slashes. Throws for absolute names,
 * `..` components, NUL bytes and empty names.
 */
export function normalizeEntryPath(name: string): string {
  if (name.includes('\0')) throw hostile(`entry name ${quoteName(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw hostile(`entry ${quoteName(name)} has an absolute path`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw hostile(`entry ${quoteName(name)} climbs out of the archive with ".."`);
    parts.push(part);
  }
  if (parts.length === 0) {
    if (name === '.' || name === './') return '';
    throw hostile(`entry with an empty name`);
  }
  return parts.join('/');
}

/**
 * Where a link entry points, as an archive path. Symlink targets are relative to the link's directory,
 * hard-link targets to the archive root (tar's rules). Targets outside the archive are refused.
 */
export function resolveLinkTarget(path: string, linkname: string, kind: 'symlink' | 'link'): string {
  if (linkname === '' || linkname.includes('\0'))
    throw hostile(`link ${quoteName(path)} has an empty or invalid target`);
  if (linkname.startsWith('/'))
    throw hostile(`link ${quoteName(path)} points to the absolute path ${quoteName(linkname)}`);
  const base = kind === 'symlink' ? path.split('/').slice(0, -1) : [];
  const parts = [...base];
  for (const part of linkname.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0)
        throw hostile(`link ${quoteName(path)} points outside the archive (${quoteName(linkname)})`);
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  if (parts.length === 0) throw hostile(`link ${quoteName(path)} points at the archive root`);
  return parts.join('/');
}

/** Follow links (in-archive aliases) to the path of a real file; refuses loops and long chains. */
export function followLinks(path: string, links: ReadonlyMap<string, string>): string {
  let p = path;
  for (let i = 0; i < 16; i++) {
    const next = links.get(p);
    if (next === undefined) return p;
    p = next;
  }
  throw hostile(`link ${quoteName(path)} is part of a loop or a chain of more than 16 links`);
}

/** A path named inside a document (manifest.json, repositories): same rules as entry names. */
export function documentPath(path: string, what: string): string {
  try {
    return normalizeEntryPath(path);
  } catch (err) {
    throw hostile(`${what} names the path ${quoteName(path)}: ${(err as Error).message}`);
  }
}
