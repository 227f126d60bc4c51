// A first-come, first-served queue for the metadata database's write lock, across processes.
//
// Why: SQLite's busy handler makes a waiting process sleep and retry, while a process that commits and at
// once begins again re-takes the lock before any sleeper wakes. Under sustained writes from several hoist
// processes one of them ran all its transactions while the others waited (measured: 4 processes × 200
// transactions, each ran its 200 back to back), and a waiter could run out of retries (SQLITE_BUSY).
//
// How: a writer takes a ticket before BEGIN IMMEDIATE and gives it back after COMMIT/ROLLBACK. A ticket is a
// symbolic link `<queue dir>/<n>` whose target is the owner's identity (`<boot-id>/<pid>/<start>`):
// symlink() creates it atomically and fails if `n` is taken, and a short target lives in the inode (no data
// block, so taking a ticket works on a full disk too). A writer takes one more than the highest ticket it
// sees and goes when no lower ticket is left, so a newcomer queues behind everyone already waiting. A ticket
// whose owner died (kill -9 between BEGIN and COMMIT) is removed by the writer behind it. Waiters wake on an
// inotify watch of the directory, with a slow poll as a fallback. Where the queue cannot be used (read-only
// or missing directory), writers fall back to SQLite's own waiting.
import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, readlink, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { HoistError } from '../core/errors.ts';
import { sleep } from '../core/sleep.ts';
import { currentOwner, describeOwner, isOwnerAlive } from '../leases/owner.ts';

/** Re-read the queue at least this often (missed inotify events, owners that die without a trace). */
const POLL_MS = 50;

export interface WriteQueueOptions {
  /** Give up (HOIST_LOCKED) when the tickets ahead have not moved for this long. */
  stallLimitMs?: number;
  /** Liveness of a ticket's owner (tests); defaults to the process-identity check. */
  isOwnerAlive?: (owner: string) => boolean;
}

/** A held ticket; release() gives the turn to the next writer. */
export interface WriteTurn {
  /** False when the queue cannot be used here: only SQLite's own lock orders writers. */
  held: boolean;
  release(): Promise<void>;
}

const NO_TURN: WriteTurn = { held: false, release: async () => undefined };

export class WriteQueue {
  readonly dir: string;
  #owner = currentOwner();
  #stallLimitMs: number;
  #isOwnerAlive: (owner: string) => boolean;
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  #usable = true;

  constructor(dir: string, opts: WriteQueueOptions = {}) {
    this.dir = dir;
    this.#stallLimitMs = opts.stallLimitMs ?? 5 * 60_000;
    this.#isOwnerAlive = opts.isOwnerAlive ?? isOwnerAlive;
  }

  /** Wait for this process's turn to write. */
  async turn(): Promise<WriteTurn> {
    if (!this.#usable) return NO_TURN;
    const mine = await this.#take();
    if (mine === undefined) return NO_TURN;
    const path = join(this.dir, String(mine));
    try {
      await this.#waitFor(mine);
    } catch (err) {
      await unlink(path).catch(() => undefined);
      throw err;
    }
    return {
      held: true,
      release: async () => {
        await unlink(path).catch(() => undefined);
      },
    };
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  async #tickets(): Promise<number[]> {
    const names = await readdir(this.dir);
    const out: number[] = [];
    for (const n of names) if (/^[0-9]+$/.test(n)) out.push(Number(n));
    return out.sort((a, b) => a - b);
  }

  /** Take a ticket one above the highest present; undefined when the queue cannot be used here. */
  async #take(): Promise<number | undefined> {
    try {
      await mkdir(this.dir, { recursive: true });
      this.#watch();
      let n = ((await this.#tickets()).at(-1) ?? 0) + 1;
      for (;;) {
        try {
          await symlink(this.#owner, join(this.dir, String(n)));
          return n;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          n++;
        }
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A store we may read but not write, or whose directory went away: SQLite's own waiting still works
      // (and a write then fails with its own clear error).
      if (
        code === 'EACCES' ||
        code === 'EPERM' ||
        code === 'EROFS' ||
        code === 'ENOENT' ||
        code === 'ENOSPC'
      ) {
        this.#usable = code === 'ENOSPC';
        return undefined;
      }
      throw err;
    }
  }

  #watch(): void {
    if (this.#watcher) return;
    try {
      this.#watcher = watch(this.dir, { persistent: false }, () => this.#wake?.());
      this.#watcher.on('error', () => this.close());
    } catch {
      // No inotify (or out of watches): the poll alone wakes us.
    }
  }

  async #waitFor(mine: number): Promise<void> {
    let ahead = Number.POSITIVE_INFINITY;
    let movedAt = Date.now();
    for (;;) {
      const changed = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      const before = (await this.#tickets()).filter((t) => t < mine);
      if (before.length === 0) return;
      if (before.length < ahead) {
        ahead = before.length;
        movedAt = Date.now();
      }
      const head = before[0]!;
      const owner = await readlink(join(this.dir, String(head))).catch(() => undefined);
      if (owner !== undefined && owner !== this.#owner && !this.#isOwnerAlive(owner)) {
        // Its owner died holding (or waiting for) the turn: SQLite rolled its transaction back already.
        await unlink(join(this.dir, String(head))).catch(() => undefined);
        continue;
      }
      if (Date.now() - movedAt > this.#stallLimitMs)
        throw new HoistError(
          'HOIST_LOCKED',
          `the metadata database's write lock has been held by ${owner ? describeOwner(owner) : 'another process'} for ${Math.round((Date.now() - movedAt) / 1000)}s without progress`,
          { hint: 'another hoist process holds the store; try again when it finishes' },
        );
      await Promise.race([changed, sleep(POLL_MS)]);
    }
  }
}
