// The SQLite connection behind the metadata stores. Several hoist processes may share one store: WAL lets
// readers run beside a writer, BEGIN IMMEDIATE takes the write lock up front (no deadlocking upgrades), and
// the busy timeout plus retries make a second process wait instead of failing.
//
// Within one process there is ONE connection, so transactions are serialised by an async queue: a
// transaction may await (GC deletes files while holding the write lock) without another async caller's
// statements landing inside it. All writes must therefore go through transaction().
import { AsyncLocalStorage } from 'node:async_hooks';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { diskFull, HoistError, isDiskFull } from '../core/errors.ts';
import { sleep } from '../core/sleep.ts';
import { MIGRATIONS, type Migration, SCHEMA_VERSION } from './migrations.ts';
import { WriteQueue, type WriteQueueOptions } from './write-queue.ts';

export type SqlValue = SQLInputValue;
export type Row = Record<string, unknown>;

export interface MetadataDbOptions {
  /** How long one process waits for another's write lock, per attempt. */
  busyTimeoutMs?: number;
  /** Extra migrations (tests); defaults to MIGRATIONS. */
  migrations?: readonly Migration[];
  /** Take turns with other processes' writers through the queue beside the file (default true). */
  fairQueue?: boolean;
  /** Options of that queue (tests: hooks). */
  writeQueue?: WriteQueueOptions;
}

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const BUSY_RETRIES = 20;

function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' && ((code & 0xff) === SQLITE_BUSY || (code & 0xff) === SQLITE_LOCKED);
}

export class MetadataDb {
  readonly path: string;
  #db: DatabaseSync;
  #statements = new Map<string, StatementSync>();
  #queue: Promise<unknown> = Promise.resolve();
  #inside = new AsyncLocalStorage<true>();
  #turnHeld = new AsyncLocalStorage<true>();
  #closed = false;
  /** Transactions ended (committed or rolled back) on this connection: part of changeStamp(). */
  #transactions = 0;
  #writers: WriteQueue | undefined;

  private constructor(path: string, db: DatabaseSync, writers: WriteQueue | undefined) {
    this.path = path;
    this.#db = db;
    this.#writers = writers;
  }

  static async open(path: string, opts: MetadataDbOptions = {}): Promise<MetadataDb> {
    let raw: DatabaseSync;
    try {
      raw = new DatabaseSync(path);
    } catch (err) {
      throw new HoistError(
        'HOIST_UNAVAILABLE',
        `cannot open metadata database ${path}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'check that the store root exists and is writable (or pass --root)',
        },
      );
    }
    try {
      return await MetadataDb.#setUp(path, raw, opts);
    } catch (err) {
      raw.close();
      if (isDiskFull(err, path)) throw diskFull('the metadata database', path, err);
      throw err;
    }
  }

  static async #setUp(path: string, raw: DatabaseSync, opts: MetadataDbOptions): Promise<MetadataDb> {
    raw.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
    // journal_mode needs a moment of exclusive access when first switched; retry if another opener races.
    for (let attempt = 0; ; attempt++) {
      try {
        raw.exec('PRAGMA journal_mode = WAL');
        break;
      } catch (err) {
        if (!isBusy(err) || attempt >= BUSY_RETRIES) throw err;
        await sleep(10 + Math.random() * 50);
      }
    }
    raw.exec('PRAGMA synchronous = NORMAL');
    raw.exec('PRAGMA foreign_keys = ON');
    const db = new MetadataDb(
      path,
      raw,
      opts.fairQueue === false || path === ':memory:'
        ? undefined
        : new WriteQueue(`${path}-writers`, opts.writeQueue),
    );
    await db.#migrate(opts.migrations ?? MIGRATIONS);
    return db;
  }

  async #migrate(migrations: readonly Migration[]): Promise<void> {
    const latest = migrations.length > 0 ? migrations[migrations.length - 1]!.version : 0;
    // A store at the latest schema needs no write: reading the version first spares every command that
    // only reads (`hoist images`) a turn in the write queue and its transaction. Checked again inside it.
    if (this.schemaVersion === latest) return;
    await this.transaction(() => {
      const current = Number(this.get<{ user_version: number }>('PRAGMA user_version')?.user_version ?? 0);
      if (current > latest) {
        throw new HoistError(
          'HOIST_FAILED_PRECONDITION',
          `metadata database ${this.path} has schema version ${current}, newer than this hoist understands (${latest})`,
          { hint: 'upgrade hoist, or use another --root' },
        );
      }
      for (const m of migrations) {
        if (m.version <= current) continue;
        this.#db.exec(m.sql);
        this.#db.exec(`PRAGMA user_version = ${m.version}`);
      }
    });
  }

  /** The schema version in the file (PRAGMA user_version). */
  get schemaVersion(): number {
    return Number(this.get<{ user_version: number }>('PRAGMA user_version')?.user_version ?? 0);
  }

  static readonly latestSchemaVersion = SCHEMA_VERSION;

  #statement(sql: string): StatementSync {
    if (this.#closed) throw new HoistError('HOIST_UNAVAILABLE', 'the metadata database is closed');
    let st = this.#statements.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  get<T = Row>(sql: string, ...params: SqlValue[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  all<T = Row>(sql: string, ...params: SqlValue[]): T[] {
    return this.#statement(sql).all(...params) as T[];
  }

  /** Iterate rows without materialising them all (large tables in GC). */
  iterate<T = Row>(sql: string, ...params: SqlValue[]): IterableIterator<T> {
    return this.#statement(sql).iterate(...params) as IterableIterator<T>;
  }

  /** Run a write statement; only valid inside transaction(). */
  run(sql: string, ...params: SqlValue[]): { changes: number } {
    const r = this.#statement(sql).run(...params);
    return { changes: Number(r.changes) };
  }

  /**
   * A token that changes whenever the database may have changed: another connection committed (SQLite's
   * `data_version`) or a transaction of this one ended. Undefined while a transaction is open on this
   * connection (its reads may see uncommitted rows). Read caches key on it (images.list).
   */
  changeStamp(): string | undefined {
    if (this.#closed || this.#db.isTransaction) return undefined;
    const v = this.get<{ data_version: number }>('PRAGMA data_version')?.data_version;
    return `${v}.${this.#transactions}`;
  }

  /** True while the caller runs inside this db's transaction (nested calls join it). */
  get inTransaction(): boolean {
    return this.#inside.getStore() === true;
  }

  /**
   * Run fn inside BEGIN IMMEDIATE … COMMIT (ROLLBACK on throw). Serialised within the process; waits for
   * other processes' write locks. fn may be async, but keep it short: other processes wait meanwhile.
   */
  async transaction<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.inTransaction) return fn();
    if (this.#turnHeld.getStore() === true) return this.#run(fn);
    const run = async (): Promise<T> => {
      const turn = await this.#writers?.turn();
      try {
        return await this.#run(fn);
      } finally {
        await turn?.release();
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Run fn holding the write turn across its transactions and what follows them: no other writer, in this
   * process or another, commits until fn returns. GC deletes the files of records it removed after their
   * commit this way (a crash then leaves files without records, which GC takes, never records without
   * files) while no writer can record one of those digests again. Where the queue cannot be used, fn runs
   * inside one transaction instead (its transactions join it; files go before the commit).
   */
  async withWriteTurn<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction || this.#turnHeld.getStore() === true) return fn();
    const run = async (): Promise<T> => {
      const turn = await this.#writers?.turn();
      try {
        if (!turn?.held) return await this.#run(fn);
        return await this.#turnHeld.run(true, fn);
      } finally {
        await turn?.release();
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #run<T>(fn: () => T | Promise<T>): Promise<T> {
    await this.#begin();
    try {
      const out = await this.#inside.run(true, fn);
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      // SQLITE_FULL says only "database or disk is full": name the file and what to do.
      if (isDiskFull(err, this.path)) throw diskFull('the metadata database', this.path, err);
      throw err;
    } finally {
      this.#transactions++;
    }
  }

  async #begin(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#statement('BEGIN IMMEDIATE').run();
        return;
      } catch (err) {
        if (!isBusy(err) || attempt >= BUSY_RETRIES) {
          if (isBusy(err))
            throw new HoistError(
              'HOIST_LOCKED',
              `metadata database ${this.path} is locked by another process`,
              {
                cause: err,
                hint: 'another hoist process holds the store; try again when it finishes',
              },
            );
          throw err;
        }
        await sleep(Math.min(1000, 10 * 2 ** Math.min(attempt, 7)) * Math.random());
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writers?.close();
    this.#statements.clear();
    this.#db.close();
  }
}
