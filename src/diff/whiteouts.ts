// OCI whiteouts (`.wh.<name>` deletes <name>, `.wh..wh..opq` makes a directory opaque) in the two forms
// hoist stores snapshots in:
// - 'delete' (native snapshotter, plain directories): the child starts as a copy of its parent, so a
//   whiteout is carried out by deleting; an opaque marker deletes what the directory held from lower
//   layers but keeps what this layer has already put there.
// - 'overlay' (overlayfs upper directory): the whiteout is stored the way overlayfs reads it: a 0:0
//   character device for a deleted name, xattr `trusted.overlay.opaque=y` on an opaque directory.
import { randomBytes } from 'node:crypto';
import { lchownSync, linkSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { makeNode } from './fs-tools.ts';
import { joinRel, type RelPath, type RootResolver } from './root-path.ts';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type Whiteout = { kind: 'opaque' } | { kind: 'meta' } | { kind: 'remove'; name: string };

/** What a `.wh.`-prefixed base name asks for; null for an invalid one (`.wh.`, `.wh..`, `.wh...`). */
export function parseWhiteout(base: string): Whiteout | null {
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  // Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs, etc.): not part of the image.
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'meta' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..') return null;
  return { kind: 'remove', name };
}

/**
 * Delete what `dir` holds except the paths this layer created (and, inside directories this layer
 * created, recurse). Returns the directories removed, so the caller can forget state under them.
 */
export function clearOpaqueDir(
  resolver: RootResolver,
  dir: RelPath,
  layerPaths: ReadonlySet<RelPath>,
): RelPath[] {
  const removed: RelPath[] = [];
  const visit = (d: RelPath) => {
    const names = readdirSync(resolver.abs(d), { encoding: 'buffer' });
    for (const raw of names) {
      const rel = joinRel(d, raw.toString('latin1'));
      const st = lstatSync(resolver.abs(rel));
      if (layerPaths.has(rel)) {
        if (st.isDirectory()) visit(rel);
        continue;
      }
      rmSync(resolver.abs(rel), { recursive: true, force: true });
      if (st.isDirectory()) removed.push(rel);
    }
  };
  visit(dir);
  return removed;
}

/**
 * Whiteout devices for the overlay form. mknod is a process per call, and a layer can delete hundreds
 * of files, so one 0:0 device is made per owner and the whiteouts are hardlinks to it (overlayfs only
 * checks the type and device number; it shares one whiteout inode the same way since Linux 5.8).
 */
export class WhiteoutDevices {
  readonly #resolver: RootResolver;
  readonly #templates = new Map<string, RelPath>();

  constructor(resolver: RootResolver) {
    this.#resolver = resolver;
  }

  /** Make a whiteout at `rel` (which must not exist), owned by uid:gid when `chown`. */
  create(rel: RelPath, uid: number, gid: number, chown: boolean): void {
    const owner = chown ? `${uid}:${gid}` : 'self';
    let template = this.#templates.get(owner);
    if (template === undefined) {
      template = `.hoist-whiteout-${randomBytes(8).toString('hex')}`;
      makeNode(this.#resolver.abs(template).toString(), 'char', 0, 0, 0);
      this.#templates.set(owner, template);
      if (chown) lchownSync(this.#resolver.abs(template), uid, gid);
    }
    linkSync(this.#resolver.abs(template), this.#resolver.abs(rel));
  }

  /** Remove the templates (the whiteouts linked to them stay). */
  dispose(): void {
    for (const t of this.#templates.values()) rmSync(this.#resolver.abs(t), { force: true });
    this.#templates.clear();
  }
}
