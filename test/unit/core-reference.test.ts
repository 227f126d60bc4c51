import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  familiarString,
  formatReference,
  nameKind,
  parseDockerRef,
  parseReference,
} from '../../src/core/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

test('docker normalisation of short names', () => {
  assert.equal(formatReference(parseDockerRef('alpine')), 'docker.io/library/alpine:latest');
  assert.equal(formatReference(parseDockerRef('user/app:1')), 'docker.io/user/app:1');
  assert.equal(
    formatReference(parseDockerRef('index.docker.io/library/alpine')),
    'docker.io/library/alpine:latest',
  );
  assert.equal(formatReference(parseDockerRef('localhost/app')), 'localhost/app:latest');
  assert.equal(formatReference(parseDockerRef('127.0.0.1:5000/team/app:v2')), '127.0.0.1:5000/team/app:v2');
  assert.equal(formatReference(parseDockerRef('[::1]:5000/app')), '[::1]:5000/app:latest');
});

test('digests and tag+digest', () => {
  const r = parseDockerRef(`alpine@${D}`);
  assert.equal(r.tag, undefined);
  assert.equal(r.digest, D);
  const both = parseReference(`ghcr.io/o/r:1.0@${D}`);
  assert.deepEqual(both, { domain: 'ghcr.io', path: 'o/r', tag: '1.0', digest: D });
  assert.equal(familiarString(parseDockerRef('docker.io/library/busybox:1')), 'busybox:1');
});

test('invalid references give a clear error', () => {
  for (const bad of [
    '',
    'Upper',
    'docker.io/Upper/x',
    'a:b:c',
    'alpine@sha256:123',
    'a'.repeat(64),
    'x//y',
    'host:port/x',
    'a:-tag',
  ]) {
    assert.throws(
      () => parseReference(bad),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'HOIST_INVALID_REFERENCE');
        assert.match(e.message, /invalid reference/);
        return true;
      },
    );
  }
});

test('name kinds: tag, digest alias, ID alias', () => {
  assert.equal(nameKind('docker.io/library/a:1'), 'tag');
  assert.equal(nameKind(`docker.io/library/a@${D}`), 'digest');
  assert.equal(nameKind(D), 'id');
});

test('property: format(parse(x)) is a fixed point', () => {
  const component = fc
    .stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/)
    .filter((s) => s.length > 0 && s.length < 20);
  const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/);
  const host = fc.constantFrom(
    '',
    'docker.io/',
    'ghcr.io/',
    '127.0.0.1:5000/',
    'localhost/',
    'registry.example.com:443/',
  );
  fc.assert(
    fc.property(host, fc.array(component, { minLength: 1, maxLength: 3 }), fc.option(tag), (h, parts, t) => {
      const input = `${h}${parts.join('/')}${t ? `:${t}` : ''}`;
      const once = formatReference(parseDockerRef(input));
      assert.equal(formatReference(parseDockerRef(once)), once);
    }),
  );
});
