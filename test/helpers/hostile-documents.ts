// fast-check generators of image documents (indexes, manifests, configs) and of hostile mutations of them:
// a value anywhere replaced by the wrong type, a huge or negative number, a bad digest, an unknown media
// type, deep nesting, a Object.prototype name; a field removed; duplicate keys, invalid UTF-8 and
// numbers JSON cannot hold written into the text. Shared by the parser property tests and the pulls
// against a fake registry.
import fc from 'fast-check';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values a hostile document puts where something else belongs. Strings starting `@@` become raw text. */
export const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  {
    arbitrary: fc.constantFrom<Json>(
      null,
      true,
      0,
      -1,
      1.5,
      2 ** 53,
      Number.MAX_SAFE_INTEGER,
      1e308,
      '',
      'sha256:abc',
      `sha256:${'G'.repeat(64)}`,
      `md5:${'0'.repeat(32)}`,
      `sha512:${'0'.repeat(128)}`,
      `sha256:${'0'.repeat(64)}`,
      'application/vnd.example.unknown+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      '../../../etc/passwd',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      {},
      [],
      [[[[[]]]]],
      { __proto__: { polluted: 'yes' } } as unknown as Json,
      'x'.repeat(10_000),
      '@@1e400',
      '@@-0',
      '@@DEEP',
      '@@BADUTF8',
    ),
    weight: 4,
  },
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

export interface Mutation {
  /** Which path of the document (index into its list of paths, modulo its length). */
  at: number;
  op: 'set' | 'delete' | 'duplicate-key';
  value: Json;
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('set', 'set', 'set', 'delete', 'duplicate-key'),
  value: hostileValue,
});

type Path = (string | number)[];

function paths(v: Json, prefix: Path = [], out: Path[] = []): Path[] {
  if (prefix.length > 0) out.push(prefix);
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) paths(x, [...prefix, i], out);
  } else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...prefix, k], out);
  return out;
}

const DEEP = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;

/** Apply a mutation to a document, giving its bytes (as a registry would serve them). */
export function mutate(doc: Json, m: Mutation): Buffer {
  const copy = structuredClone(doc) as Json;
  const all = paths(copy);
  const path = all[m.at % Math.max(1, all.length)] ?? [];
  const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string, Json>)[k as string]!, copy);
  const key = path[path.length - 1];
  if (m.op === 'duplicate-key' || key === undefined) {
    // The same key twice: the hostile value first, the real one after (a parser keeping the first one
    // would read the hostile value; JSON.parse, like Go's encoding/json, keeps the last).
    const text = JSON.stringify(copy);
    const k = typeof key === 'string' ? key : 'mediaType';
    return Buffer.from(text.replace('{', `{${JSON.stringify(k)}:${JSON.stringify(m.value)},`));
  }
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Record<string, Json>)[key];
  } else {
    (parent as Record<string | number, Json>)[key] = m.value;
  }
  let text = JSON.stringify(copy);
  // Raw text JSON.stringify cannot produce.
  text = text.replace('"@@1e400"', '1e400').replace('"@@-0"', '-0').replace('"@@DEEP"', DEEP);
  const bytes = Buffer.from(text);
  const bad = bytes.indexOf('"@@BADUTF8"');
  if (bad < 0) return bytes;
  return Buffer.concat([
    bytes.subarray(0, bad + 1),
    Buffer.from([0xff, 0xfe, 0xc3]),
    bytes.subarray(bad + 10),
  ]);
}
