// Archive entry names and links: normalised when harmless, refused when they leave the archive.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nameFromAnnotations } from '../../src/archive/load-names.ts';
import { followLinks, normalizeEntryPath, resolveLinkTarget } from '../../src/archive/tar-paths.ts';

test('entry names: ./ and duplicate slashes are normalised; absolute, .. and NUL are refused', () => {
  assert.equal(normalizeEntryPath('./index.json'), 'index.json');
  assert.equal(normalizeEntryPath('blobs//sha256/./ab'), 'blobs/sha256/ab');
  assert.equal(normalizeEntryPath('blobs/sha256/'), 'blobs/sha256');
  assert.equal(normalizeEntryPath('./'), '');
  assert.throws(() => normalizeEntryPath('/etc/passwd'), /absolute path/);
  assert.throws(() => normalizeEntryPath('../x'), /climbs out/);
  assert.throws(() => normalizeEntryPath('blobs/../../x'), /climbs out/);
  assert.throws(() => normalizeEntryPath('a\0b'), /NUL/);
});

test('links: symlinks resolve from their directory, hard links from the root; escapes are refused', () => {
  assert.equal(resolveLinkTarget('L1/layer.tar', '../abc.tar', 'symlink'), 'abc.tar');
  assert.equal(resolveLinkTarget('blobs/sha256/x', '../../rootfs.tgz', 'symlink'), 'rootfs.tgz');
  assert.equal(resolveLinkTarget('a/b', 'c/d', 'link'), 'c/d');
  assert.throws(() => resolveLinkTarget('L1/layer.tar', '../../x', 'symlink'), /outside the archive/);
  assert.throws(() => resolveLinkTarget('x', '/etc/passwd', 'symlink'), /absolute path/);
  assert.throws(() => resolveLinkTarget('a/b', '..', 'link'), /outside the archive/);
  const links = new Map([
    ['a', 'b'],
    ['b', 'c'],
    ['loop1', 'loop2'],
    ['loop2', 'loop1'],
  ]);
  assert.equal(followLinks('a', links), 'c');
  assert.equal(followLinks('z', links), 'z');
  assert.throws(() => followLinks('loop1', links), /loop/);
});

test('annotation names: full name first, ref.name only with a repository, bare tags need a base name', () => {
  assert.equal(
    nameFromAnnotations({ 'io.containerd.image.name': 'alpine:3', 'org.opencontainers.image.ref.name': '3' }),
    'docker.io/library/alpine:3',
  );
  assert.equal(
    nameFromAnnotations({ 'org.opencontainers.image.ref.name': 'h.io:5000/a/b:1' }),
    'h.io:5000/a/b:1',
  );
  assert.equal(nameFromAnnotations({ 'org.opencontainers.image.ref.name': 'latest' }), undefined);
  assert.equal(
    nameFromAnnotations({ 'org.opencontainers.image.ref.name': 'v1.2' }, 'base/repo'),
    'docker.io/base/repo:v1.2',
  );
  assert.equal(nameFromAnnotations({ 'org.opencontainers.image.ref.name': 'Not A Ref:!' }), undefined);
  assert.equal(nameFromAnnotations(undefined), undefined);
  assert.throws(
    () => nameFromAnnotations({ 'io.containerd.image.name': 'has space:1' }),
    /not a valid reference/,
  );
});
