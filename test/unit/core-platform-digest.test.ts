import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifestOrIndex } from '../../src/core/descriptor.ts';
import { DigestVerifier, parseDigest, sha256 } from '../../src/core/digest.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/core/platform.ts';

test('platform parsing and arm64 → v8 default', () => {
  assert.equal(formatPlatform(parsePlatform('linux/arm64')), 'linux/arm64/v8');
  assert.equal(formatPlatform(parsePlatform('linux/aarch64')), 'linux/arm64/v8');
  assert.equal(formatPlatform(parsePlatform('linux/x86_64')), 'linux/amd64');
  assert.equal(formatPlatform(parsePlatform('linux/arm')), 'linux/arm/v7');
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' }));
  assert.ok(
    platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' }),
  );
  assert.ok(
    !platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }),
  );
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'arm64' }));
  assert.throws(() => parsePlatform('linux/arm64/v8/extra'), /invalid platform/);
});

test('digest verifier detects size and digest mismatches', () => {
  const data = Buffer.from('hello');
  const v = new DigestVerifier();
  v.update(data);
  assert.equal(v.verify({ digest: sha256(data), size: 5 }), sha256(data));
  assert.throws(
    () => v.verify({ size: 6 }),
    (e: Error & { code?: string }) => e.code === 'HOIST_SIZE_MISMATCH',
  );
  assert.throws(
    () => v.verify({ digest: sha256('other') }),
    (e: Error & { code?: string }) =>
      e.code === 'HOIST_DIGEST_MISMATCH' && e.message.includes(sha256('other')),
  );
  assert.throws(() => parseDigest('sha256:abc'), /invalid digest/);
  assert.throws(() => parseDigest(`md5:${'a'.repeat(32)}`), /unsupported digest algorithm/);
});

test('manifest parsing refuses schema 1 and malformed documents', () => {
  assert.throws(
    () => parseManifestOrIndex('{"schemaVersion":1,"name":"x"}', MediaType.DockerSchema1SignedManifest, 'x'),
    /schema 1 .* not supported/,
  );
  assert.throws(
    () => parseManifestOrIndex('{not json', MediaType.OciManifest, 'x'),
    /malformed manifest of x: not valid JSON/,
  );
  assert.throws(
    () =>
      parseManifestOrIndex(
        '{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:1","size":1},"layers":[]}',
        MediaType.OciManifest,
        'x',
      ),
    /config.digest .* is not a valid digest/,
  );
  const ok = parseManifestOrIndex(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: sha256('m'),
          size: 1,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    }),
    MediaType.OciIndex,
  );
  assert.equal(ok.kind, 'index');
});
