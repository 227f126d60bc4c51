// The peer endpoint's two small decisions (src/server/registry): which image record a peer's repository
// name and tag mean (containerd's ?ns=, a full name, a Docker Hub name), and how one Range header reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageNames } from '../../src/server/registry/lookup.ts';
import { parseRange } from '../../src/server/registry/range.ts';

test('a peer name and tag → the image record name', () => {
  assert.deepEqual(imageNames('library/alpine', '3.20', 'docker.io'), ['docker.io/library/alpine:3.20']);
  assert.deepEqual(imageNames('team/app', 'v1', 'registry.example:5000'), [
    'registry.example:5000/team/app:v1',
  ]);
  assert.deepEqual(imageNames('docker.io/library/alpine', '3.20', undefined), [
    'docker.io/library/alpine:3.20',
  ]);
  assert.deepEqual(imageNames('localhost/app', '1', undefined), ['localhost/app:1']);
  assert.deepEqual(imageNames('alpine', '3.20', undefined), ['docker.io/library/alpine:3.20']);
  assert.deepEqual(imageNames('bitnami/redis', '7', undefined), ['docker.io/bitnami/redis:7']);
});

test('Range: one range honoured, clamped to the end; past the end 416; anything else the whole blob', () => {
  assert.deepEqual(parseRange(undefined, 100), { kind: 'whole' });
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'part', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'part', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { kind: 'part', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'part', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { kind: 'part', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  for (const ignored of ['bytes=0-1,5-6', 'items=0-1', 'bytes=9-3', 'bytes=-', 'garbage'])
    assert.deepEqual(parseRange(ignored, 100), { kind: 'whole' }, ignored);
});
