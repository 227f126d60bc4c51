// The document parsers against valid documents and hostile mutations of them (fast-check; a failure prints
// its seed and path to replay): parseManifestOrIndex, parseImageConfig and what pull does next with an
// index (choosing a platform) either accept the document or throw a HoistError with a one-line message;
// never a TypeError, never a crash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseImageConfig, parseManifestOrIndex } from '../../src/core/descriptor.ts';
import { HoistError } from '../../src/core/errors.ts';
import { MediaType } from '../../src/core/mediatypes.ts';
import { hostPlatform } from '../../src/core/platform.ts';
import { ALL_PLATFORMS, onePlatform, selectManifests } from '../../src/images/walk.ts';
import { mutate, mutationArb } from '../helpers/hostile-documents.ts';

const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
const digest = hex.map((h) => `sha256:${h}`);
const descriptor = (mediaType: fc.Arbitrary<string>) =>
  fc.record(
    {
      mediaType,
      digest,
      size: fc.nat(),
      annotations: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
      platform: fc.record(
        {
          os: fc.constantFrom('linux', 'windows'),
          architecture: fc.constantFrom('amd64', 'arm64', 'arm', 'x86_64', 's390x'),
          variant: fc.constantFrom('v7', 'v8', ''),
        },
        { requiredKeys: ['os', 'architecture'] },
      ),
    },
    { requiredKeys: ['mediaType', 'digest', 'size'] },
  );
const manifestType = fc.constantFrom(MediaType.OciManifest, MediaType.DockerManifest);
const manifestDoc = fc.record({
  schemaVersion: fc.constant(2),
  mediaType: manifestType,
  config: descriptor(fc.constantFrom(MediaType.OciConfig, MediaType.DockerConfig)),
  layers: fc.array(descriptor(fc.constantFrom(MediaType.OciLayerGzip, MediaType.DockerLayerGzip)), {
    maxLength: 4,
  }),
});
const indexDoc = fc.record({
  schemaVersion: fc.constant(2),
  mediaType: fc.constantFrom(MediaType.OciIndex, MediaType.DockerManifestList),
  manifests: fc.array(descriptor(manifestType), { maxLength: 4 }),
});
const configDoc = fc.record({
  architecture: fc.constantFrom('amd64', 'arm64'),
  os: fc.constant('linux'),
  config: fc.record({ User: fc.string({ maxLength: 4 }), Env: fc.array(fc.string({ maxLength: 8 })) }),
  rootfs: fc.record({ type: fc.constant('layers'), diff_ids: fc.array(digest, { maxLength: 3 }) }),
});

/** Run `fn`; anything it throws must be a HoistError with a one-line message. */
function cleanly(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HoistError)) throw err;
    assert.ok(err.message.length > 0 && !err.message.includes('\n'), err.message);
    assert.notEqual(err.code, 'HOIST_INTERNAL', err.message);
  }
}

/** Parse as pull does: the document, then (for an index) the platform choice. */
function asPull(bytes: Buffer, mediaType: string): void {
  const parsed = parseManifestOrIndex(bytes, mediaType, 'example.com/app:1');
  if (parsed.kind === 'index') {
    selectManifests(parsed.index, ALL_PLATFORMS);
    selectManifests(parsed.index, onePlatform(hostPlatform()));
    selectManifests(parsed.index, onePlatform({ os: 'linux', architecture: 'arm', variant: 'v6' }));
  }
}

test('valid documents parse', () => {
  fc.assert(
    fc.property(manifestDoc, indexDoc, configDoc, (m, i, c) => {
      assert.equal(parseManifestOrIndex(JSON.stringify(m), m.mediaType).kind, 'manifest');
      assert.equal(parseManifestOrIndex(JSON.stringify(i), i.mediaType).kind, 'index');
      asPull(Buffer.from(JSON.stringify(i)), i.mediaType);
      parseImageConfig(JSON.stringify(c));
    }),
    { numRuns: 200 },
  );
});

test('mutated manifests, indexes and configs: accepted or a HoistError, never anything else', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        manifestDoc.map((d) => ({ d, kind: 'manifest' as const })),
        indexDoc.map((d) => ({ d, kind: 'index' as const })),
        configDoc.map((d) => ({ d, kind: 'config' as const })),
      ),
      fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
      fc.constantFrom<string>(MediaType.OciManifest, MediaType.OciIndex, 'application/octet-stream'),
      ({ d, kind }, mutations, served) => {
        let bytes: Buffer = Buffer.from(JSON.stringify(d));
        for (const m of mutations) {
          let doc: unknown;
          try {
            doc = JSON.parse(bytes.toString('utf8'));
          } catch {
            break; // an earlier mutation made it unparseable: that is the case to test
          }
          try {
            bytes = mutate(doc as never, m);
          } catch (err) {
            // The helper cannot copy 100,000 levels of nesting; the document as it is is the case.
            if (err instanceof RangeError) break;
            throw err;
          }
        }
        if (kind === 'config') cleanly(() => parseImageConfig(bytes));
        else {
          const mediaType = kind === 'index' ? (d as { mediaType: string }).mediaType : served;
          cleanly(() => asPull(bytes, mediaType));
        }
      },
    ),
    { numRuns: 1500 },
  );
});

test('not JSON at all: bytes, text, truncations', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
        fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
        manifestDoc.chain((m) => {
          const text = JSON.stringify(m);
          return fc.nat({ max: text.length }).map((n) => Buffer.from(text.slice(0, n)));
        }),
      ),
      (bytes) => {
        cleanly(() => asPull(bytes, MediaType.OciManifest));
        cleanly(() => asPull(bytes, MediaType.OciIndex));
        cleanly(() => parseImageConfig(bytes));
      },
    ),
    { numRuns: 500 },
  );
});

test('a platform named like an Object.prototype member is a platform like any other (was a TypeError)', () => {
  for (const architecture of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        {
          mediaType: MediaType.OciManifest,
          digest: `sha256:${'1'.repeat(64)}`,
          size: 10,
          platform: { os: 'linux', architecture },
        },
      ],
    };
    const parsed = parseManifestOrIndex(JSON.stringify(index), MediaType.OciIndex);
    assert.equal(parsed.kind, 'index');
    if (parsed.kind !== 'index') continue;
    assert.deepEqual(selectManifests(parsed.index, onePlatform(hostPlatform())), []);
    const [only] = selectManifests(parsed.index, onePlatform({ os: 'linux', architecture }));
    assert.equal(only?.platform?.architecture, architecture);
  }
});

test('100,000 levels of nesting where a digest belongs: a HoistError (String() of it overflowed the stack)', () => {
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  const config = `{"rootfs":{"type":"layers","diff_ids":[${deep}]}}`;
  assert.throws(() => parseImageConfig(config), /rootfs.diff_ids has a value that is not a string/);
  const manifest = `{"schemaVersion":2,"config":{"mediaType":"x","digest":${deep},"size":1},"layers":[]}`;
  assert.throws(() => parseManifestOrIndex(manifest, MediaType.OciManifest), HoistError);
});
