import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HoistError } from '../../src/core/errors.ts';
import { openLocalStore } from '../../src/embedded/store.ts';
import { MetadataDb } from '../../src/metadata/db.ts';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/metadata/migrations.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hoist-db-'));
  dirs.push(d);
  return d;
}

test('migrations are applied once and are idempotent on reopen', async () => {
  const root = await tempDir();
  const s1 = await openLocalStore(root);
  assert.equal(s1.db.schemaVersion, SCHEMA_VERSION);
  await s1.namespaces.create('kept');
  s1.close();
  const s2 = await openLocalStore(root);
  assert.equal(s2.db.schemaVersion, SCHEMA_VERSION);
  assert.deepEqual(
    (await s2.namespaces.list()).map((n) => n.name),
    ['kept'],
  );
  const mode = s2.db.get<{ journal_mode: string }>('PRAGMA journal_mode');
  assert.equal(mode?.journal_mode, 'wal');
  assert.equal(s2.db.get<{ foreign_keys: number }>('PRAGMA foreign_keys')?.foreign_keys, 1);
  s2.close();
});

test('a later migration is applied on reopen; a newer database is refused', async () => {
  const path = join(await tempDir(), 'm.db');
  const extra = [
    ...MIGRATIONS,
    { version: SCHEMA_VERSION + 1, description: 'test', sql: 'CREATE TABLE extra (x)' },
  ];
  (await MetadataDb.open(path)).close();
  const db = await MetadataDb.open(path, { migrations: extra });
  assert.equal(db.schemaVersion, SCHEMA_VERSION + 1);
  await db.transaction(() => db.run('INSERT INTO extra (x) VALUES (1)'));
  db.close();
  await assert.rejects(
    MetadataDb.open(path),
    (e: unknown) =>
      e instanceof HoistError && e.code === 'HOIST_FAILED_PRECONDITION' && /newer/.test(e.message),
  );
});

test('transactions roll back on throw and serialise async callers', async () => {
  const db = await MetadataDb.open(join(await tempDir(), 't.db'), {
    migrations: [{ version: 1, description: 't', sql: 'CREATE TABLE t (x INTEGER)' }],
  });
  await assert.rejects(
    db.transaction(() => {
      db.run('INSERT INTO t (x) VALUES (1)');
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(db.all('SELECT x FROM t').length, 0);
  // Two async transactions that await in the middle must not interleave on the one connection.
  const order: string[] = [];
  const slow = (name: string) =>
    db.transaction(async () => {
      order.push(`${name}:begin`);
      db.run('INSERT INTO t (x) VALUES (?)', name.length);
      await new Promise((r) => setTimeout(r, 20));
      order.push(`${name}:end`);
    });
  await Promise.all([slow('a'), slow('bb')]);
  assert.deepEqual(order, ['a:begin', 'a:end', 'bb:begin', 'bb:end']);
  // Nested calls join the outer transaction.
  await db.transaction(async () => {
    await db.transaction(() => db.run('INSERT INTO t (x) VALUES (9)'));
  });
  assert.equal(db.all('SELECT x FROM t').length, 3);
  db.close();
});
