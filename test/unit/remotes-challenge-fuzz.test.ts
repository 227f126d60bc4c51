// WWW-Authenticate headers from a hostile or broken registry: garbage and near-valid challenges. The
// parser never throws, always ends (every step consumes input), and gives back only well-formed
// challenges: lower-case token schemes and string parameters, nothing inherited from Object.prototype.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Challenge, challengeScopes, parseChallenges } from '../../src/remotes/challenge.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function wellFormed(cs: Challenge[]): void {
  for (const c of cs) {
    assert.match(c.scheme, TOKEN);
    for (const [k, v] of Object.entries(c.params)) {
      assert.match(k, TOKEN);
      assert.equal(typeof v, 'string');
    }
    if (c.token68 !== undefined) assert.equal(typeof c.token68, 'string');
    assert.ok(Array.isArray(challengeScopes(c)));
    // A parameter the header did not send is absent, even one named like an Object.prototype member.
    for (const name of ['realm', 'service', 'scope', 'constructor', 'tostring', '__proto__'])
      assert.ok(
        c.params[name] === undefined || Object.hasOwn(c.params, name),
        `params.${name} is the header's own`,
      );
  }
}

/** Pieces a challenge is made of, including the awkward ones, glued in any order. */
const piece = fc.oneof(
  fc.constantFrom(
    'Bearer',
    'Basic',
    'bearer',
    'Negotiate',
    'realm',
    'service',
    'scope',
    '__proto__',
    'constructor',
    'toString',
    '=',
    '==',
    ',',
    ', ,',
    ' ',
    '\t',
    '"',
    '\\',
    '\\"',
    '"unterminated',
    '"https://auth.example/token"',
    'https://auth.example/token',
    'dXNlcjpwYXNz==',
    'repository:a/b:pull',
    ';',
    '\u0000',
    '\u00ff',
    '\ud83d\ude00',
  ),
  fc.string({ maxLength: 6 }),
);
const nearValid = fc.array(piece, { maxLength: 24 }).map((parts) => parts.join(''));
const garbage = fc.string({ maxLength: 200, unit: 'binary' });

test('garbage and near-valid WWW-Authenticate values: no throw, well-formed challenges', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(nearValid, garbage), { minLength: 1, maxLength: 3 }), (values) => {
      wellFormed(parseChallenges(values));
    }),
    { numRuns: 2000 },
  );
});

test('long hostile values parse in one pass (a quoted value never closed, 100k separators)', () => {
  const long = [
    `Bearer realm="${'a'.repeat(100_000)}`,
    `Bearer ${',='.repeat(50_000)}`,
    `${'\\'.repeat(100_000)}`,
    `Bearer realm=${'"\\"'.repeat(30_000)}`,
  ];
  for (const v of long) wellFormed(parseChallenges(v));
});

test('a parameter named __proto__ or constructor is an ordinary parameter', () => {
  const [c] = parseChallenges('Bearer __proto__="x", constructor=y, realm="https://a/token"');
  assert.equal(c?.params.realm, 'https://a/token');
  assert.equal(Object.getPrototypeOf(c?.params), null);
  assert.equal(Object.getOwnPropertyDescriptor(c?.params, '__proto__')?.value, 'x');
  assert.equal(c?.params.constructor, 'y');
  const [d] = parseChallenges('Bearer service=x');
  assert.equal(d?.params.realm, undefined);
  assert.equal(d?.params.constructor, undefined, 'nothing inherited');
});
