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
// sees and goes when no lower ticket is left, so a newcomer queues behind everyone already waiting. The
// listing a writer numbers its ticket from can be stale by the time its symlink lands: a writer that read
// the queue while a ticket was still there, then slept before taking its own, gets a number ABOVE a
// newcomer that read the emptied queue after it and takes a LOWER one later; each then sees no lower ticket
// at its own check and both went (GC deleting files in its turn while a writer recorded one of them: a
// record without its file). So, as in Lamport's bakery, a writer choosing its number says so first (a
// `choosing-…` symlink, also naming its owner, from before it reads the queue until its ticket is taken),
// and a waiter goes only once every writer that was choosing when it first looked has taken its ticket: one
// whose listing predates our ticket either shows a lower ticket by then or never had one. A ticket or mark
// whose owner died (kill -9 between BEGIN and COMMIT) is removed by the writer behind it. Waiters wake on an
// inotify watch of the directory, with a slow poll as a fallback. Where the queue cannot be used (read-only
// or missing directory), writers fall back to SQLite's own waiting.
import { randomBytes } from 'node:crypto';
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
  /** Tests: called once the queue was read and ticket `n` chosen, before it is taken. */
  beforeTicket?: (n: number) => void | Promise<void>;
}

/** A held ticket; release() gives the turn to the next writer. */
export interface WriteTurn {
  /** False when the queue cannot be used here: only SQLite's own lock orders writers. */
  held: boolean;
  release(): Promise<void>;
}

const NO_TURN: WriteTurn = { held: false, release: async () => undefined };

const CHOOSING = 'choosing-';

export class WriteQueue {
  readonly dir: string;
  #owner = currentOwner();
  #stallLimitMs: number;
  #isOwnerAlive: (owner: string) => boolean;
  #watcher: FSWatcher | undefined;
  #wake: (() => void) | undefined;
  #usable = true;
  #beforeTicket: ((n: number) => void | Promise<void>) | undefined;

  constructor(dir: string, opts: WriteQueueOptions = {}) {
    this.dir = dir;
    this.#stallLimitMs = opts.stallLimitMs ?? 5 * 60_000;
    this.#isOwnerAlive = opts.isOwnerAlive ?? isOwnerAlive;
    this.#beforeTicket = opts.beforeTicket;
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

  /** The tickets, lowest first, and the marks of writers choosing theirs. */
  async #read(): Promise<{ tickets: number[]; choosing: string[] }> {
    const names = await readdir(this.dir);
    const tickets: number[] = [];
    const choosing: string[] = [];
    for (const n of names)
      if (/^[0-9]+$/.test(n)) tickets.push(Number(n));
      else if (n.startsWith(CHOOSING)) choosing.push(n);
    return { tickets: tickets.sort((a, b) => a - b), choosing };
  }

  /** True (after removing it) when the entry's owner is another process, provably dead. */
  async #removeIfDead(name: string): Promise<boolean> {
    const owner = await readlink(join(this.dir, name)).catch(() => undefined);
    if (owner === undefined || owner === this.#owner || this.#isOwnerAlive(owner)) return false;
    await unlink(join(this.dir, name)).catch(() => undefined);
    return true;
  }

  /** Take a ticket one above the highest present; undefined when the queue cannot be used here. */
  async #take(): Promise<number | undefined> {
    try {
      await mkdir(this.dir, { recursive: true });
      this.#watch();
      // Choosing, from before the listing is read until the ticket is there (see the top of the file).
      const mark = join(this.dir, `${CHOOSING}${process.pid}-${randomBytes(6).toString('hex')}`);
      await symlink(this.#owner, mark);
      try {
        let n = ((await this.#read()).tickets.at(-1) ?? 0) + 1;
        await this.#beforeTicket?.(n);
        for (;;) {
          try {
            await symlink(this.#owner, join(this.dir, String(n)));
            return n;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            n++;
          }
        }
      } finally {
        await unlink(mark).catch(() => undefined);
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
    // Writers choosing a ticket when we first look, after ours was taken: their listing may not show ours,
    // so they may still take a lower one. Writers that start choosing later see ours and queue behind it.
    let choosers: Set<string> | undefined;
    for (;;) {
      const changed = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      const { tickets, choosing } = await this.#read();
      if (choosers === undefined) choosers = new Set(choosing);
      else for (const c of choosers) if (!choosing.includes(c)) choosers.delete(c);
      const before = tickets.filter((t) => t < mine);
      if (before.length === 0 && choosers.size === 0) return;
      if (before.length + choosers.size < ahead) {
        ahead = before.length + choosers.size;
        movedAt = Date.now();
      }
      // Its owner died holding (or waiting for) the turn: SQLite rolled its transaction back already.
      if (before.length > 0 && (await this.#removeIfDead(String(before[0])))) continue;
      let removed = false;
      if (before.length === 0) for (const c of choosers) if (await this.#removeIfDead(c)) removed = true;
      if (removed) continue;
      const head = before.length > 0 ? String(before[0]) : [...choosers][0]!;
      const owner = await readlink(join(this.dir, head)).catch(() => undefined);
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
