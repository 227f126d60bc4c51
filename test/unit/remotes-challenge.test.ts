import assert from 'node:assert/strict';
import { test } from 'node:test';
import { challengeScopes, parseChallenges } from '../../src/remotes/challenge.ts';

test('Bearer challenge with realm, service and scope', () => {
  const [c, ...rest] = parseChallenges(
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
  );
  assert.equal(rest.length, 0);
  assert.equal(c?.scheme, 'bearer');
  assert.deepEqual(
    { ...c?.params },
    {
      realm: 'https://auth.docker.io/token',
      service: 'registry.docker.io',
      scope: 'repository:library/alpine:pull',
    },
  );
});

test('commas inside quoted values, escaped quotes, spaces around = and mixed case', () => {
  const [c] = parseChallenges(
    'BEARER Realm = "https://a.example/token?x=1,2" , scope="repository:a/b:pull,push repository:c:pull", error="say \\"hi\\""',
  );
  assert.equal(c?.scheme, 'bearer');
  assert.equal(c?.params.realm, 'https://a.example/token?x=1,2');
  assert.equal(c?.params.scope, 'repository:a/b:pull,push repository:c:pull');
  assert.equal(c?.params.error, 'say "hi"');
  assert.deepEqual(challengeScopes(c!), ['repository:a/b:pull,push', 'repository:c:pull']);
});

test('several challenges in one header and across headers', () => {
  const cs = parseChallenges([
    'Basic realm="basic, with comma", Bearer realm="https://t.example/",service=svc',
    'Negotiate',
    'Custom dG9rZW42OA==',
  ]);
  assert.deepEqual(
    cs.map((c) => c.scheme),
    ['basic', 'bearer', 'negotiate', 'custom'],
  );
  assert.equal(cs[0]?.params.realm, 'basic, with comma');
  assert.equal(cs[1]?.params.service, 'svc');
  assert.equal(cs[3]?.token68, 'dG9rZW42OA==');
  assert.deepEqual({ ...cs[3]?.params }, {});
});

test('unquoted token values and an unterminated quoted string do not throw', () => {
  const [c] = parseChallenges('Basic realm=registry, charset="UTF-8');
  assert.equal(c?.params.realm, 'registry');
  assert.equal(c?.params.charset, 'UTF-8');
  assert.deepEqual(parseChallenges(''), []);
  assert.deepEqual(parseChallenges(' , ,'), []);
});
