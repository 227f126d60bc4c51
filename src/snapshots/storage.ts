// A snapshotter's directories and the write-safety protocol around them:
//   <root>/snapshots/<snapshotter>/snapshots/<backend id>/{fs,work}   recorded snapshots
//   …/snapshots/new-<owner, base64url>.<random>/                    being prepared by a process, no row yet
//   …/snapshots/rm-<backend id>.<random>/                           no longer recorded, being removed
// A directory is built under new-…, then renamed to its backend id inside the transaction that inserts
// its row; removal deletes the row, commits, then deletes the directory (ids are never reused once a
// deletion commits: AUTOINCREMENT). So under the write lock, a numeric directory without a row is always
// garbage, a new-… directory is garbage once its owner process is dead, and rm-… directories (orphans
// moved aside under the lock, deleted after it) are always garbage.
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetadataDb } from '../metadata/db.ts';
import { SnapshotRecords } from '../metadata/snapshots.ts';

const isErrno = (err: unknown, ...codes: string[]) =>
  codes.includes((err as NodeJS.ErrnoException).code ?? '');

/** Directory holding all snapshotters under a store root. */
export const snapshotsRoot = (storeRoot: string) => join(storeRoot, 'snapshots');

export class SnapshotStorage {
  /** <root>/snapshots/<snapshotter> */
  readonly root: string;
  readonly snapshotter: string;
  readonly #dir: string;

  constructor(snapshotsDir: string, snapshotter: string) {
    this.snapshotter = snapshotter;
    this.root = join(snapshotsDir, snapshotter);
    this.#dir = join(this.root, 'snapshots');
  }

  async init(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o711 });
  }

  dir(id: number): string {
    return join(this.#dir, String(id));
  }

  fs(id: number): string {
    return join(this.dir(id), 'fs');
  }

  work(id: number): string {
    return join(this.dir(id), 'work');
  }

  /** Create a staging directory (with empty fs/ and work/) owned by `owner`. */
  async stage(owner: string): Promise<string> {
    await this.init();
    const dir = join(
      this.#dir,
      `new-${Buffer.from(owner).toString('base64url')}.${randomBytes(6).toString('hex')}`,
    );
    await mkdir(dir, { mode: 0o700 });
    // fs/ is the snapshot's root directory: the usual permissions of a root filesystem.
    await mkdir(join(dir, 'fs'), { mode: 0o755 });
    await mkdir(join(dir, 'work'), { mode: 0o700 });
    return dir;
  }

  /**
   * Move a staged directory to its backend id. Call inside the transaction that inserts the row. A
   * directory already there is a leftover of a rolled-back insert (ids are reused only then): it is moved
   * aside and its path returned for removal after the commit.
   */
  async publish(staging: string, id: number): Promise<string | undefined> {
    const target = this.dir(id);
    try {
      await rename(staging, target);
      return undefined;
    } catch (err) {
      if (!isErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
    }
    const aside = await this.setAside(id);
    await rename(staging, target);
    return aside;
  }

  /** Rename a recorded directory to rm-…; returns the new path (undefined when it does not exist). */
  async setAside(id: number): Promise<string | undefined> {
    const aside = join(this.#dir, `rm-${id}.${randomBytes(6).toString('hex')}`);
    try {
      await rename(this.dir(id), aside);
      return aside;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /**
   * Call inside a write transaction: move numeric directories without a row aside, and list rm-… and
   * dead owners' new-… directories. Returns the paths to remove once the transaction commits.
   */
  async collectOrphans(db: MetadataDb, isOwnerAlive: (owner: string) => boolean): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const recorded = new SnapshotRecords(db, this.snapshotter).backendIds();
    const out: string[] = [];
    for (const name of names) {
      if (/^[0-9]+$/.test(name)) {
        if (recorded.has(Number(name))) continue;
        const aside = await this.setAside(Number(name));
        if (aside) out.push(aside);
      } else if (name.startsWith('rm-')) out.push(join(this.#dir, name));
      else if (name.startsWith('new-')) {
        const owner = Buffer.from(name.slice(4, name.lastIndexOf('.')), 'base64url').toString();
        if (!isOwnerAlive(owner)) out.push(join(this.#dir, name));
      }
    }
    return out;
  }
}

/** The snapshotters that have a directory under `<root>/snapshots` (including ones not opened now). */
export async function storagesUnder(snapshotsDir: string): Promise<SnapshotStorage[]> {
  let entries: string[];
  try {
    entries = await readdir(snapshotsDir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  return entries.filter((n) => !n.startsWith('.')).map((n) => new SnapshotStorage(snapshotsDir, n));
}

/**
 * Remove a directory tree. Layers may contain read-only directories, which stop a non-root process from
 * deleting their entries: on EACCES, make the tree writable and try again.
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM')) throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await makeWritable(join(dir, e.name));
}
