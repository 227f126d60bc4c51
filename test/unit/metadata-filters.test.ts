import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HoistError } from '../../src/core/errors.ts';
import {
  type Conjunction,
  compileFilters,
  type FieldGetter,
  formatFilter,
  mapField,
  parseFilter,
  type Selector,
} from '../../src/metadata/filters.ts';

const image = {
  name: 'docker.io/library/alpine:3.20',
  labels: { 'io.cri-containerd.image': 'managed', foo: 'bar' },
};
const get: FieldGetter = (path) => {
  if (path.length === 1 && path[0] === 'name') return image.name;
  if (path[0] === 'labels') return mapField(image.labels, path.slice(1));
  return undefined;
};
const matches = (...filters: string[]) => compileFilters(filters).match(get);

test('parses containerd filter syntax', () => {
  assert.deepEqual(parseFilter('labels.foo==bar'), [
    { fieldpath: ['labels', 'foo'], operator: '==', value: 'bar' },
  ]);
  assert.deepEqual(parseFilter('labels."a.b"!="x y"'), [
    { fieldpath: ['labels', 'a.b'], operator: '!=', value: 'x y' },
  ]);
  assert.deepEqual(parseFilter('name~=^docker\\.io/, labels.foo'), [
    { fieldpath: ['name'], operator: '~=', value: '^docker\\.io/' },
    { fieldpath: ['labels', 'foo'], operator: 'present', value: '' },
  ]);
  assert.deepEqual(parseFilter('labels."io.cri-containerd.image"=="managed"'), [
    { fieldpath: ['labels', 'io.cri-containerd.image'], operator: '==', value: 'managed' },
  ]);
  assert.deepEqual(parseFilter('name~=/a,b/'), [{ fieldpath: ['name'], operator: '~=', value: 'a,b' }]);
  assert.deepEqual(parseFilter(''), []);
});

test('matches: equality, inequality, regexp, presence, AND within a string, OR across strings', () => {
  assert.equal(matches('name==docker.io/library/alpine:3.20'), true);
  assert.equal(matches('name!=docker.io/library/alpine:3.20'), false);
  assert.equal(matches('name~=^docker\\.io/library/'), true);
  assert.equal(matches('name~=ubuntu'), false);
  assert.equal(matches('labels.foo'), true);
  assert.equal(matches('labels.missing'), false);
  assert.equal(matches('labels.missing!=x'), true, 'absent counts as empty for !=');
  assert.equal(matches('labels."io.cri-containerd.image"==managed'), true);
  assert.equal(matches('labels.io.cri-containerd.image==managed'), true, 'unquoted dotted keys join with .');
  assert.equal(matches('labels.foo==bar,name~=ubuntu'), false);
  assert.equal(matches('labels.foo==nope', 'name~=alpine'), true);
  assert.equal(matches(), true);
});

test('bad syntax is a clear invalid-argument error', () => {
  for (const bad of ['labels.foo==', '==x', 'labels.', 'a==b,', 'a b', 'labels."unterminated', 'name~=(']) {
    assert.throws(
      () => compileFilters([bad]),
      (e: unknown) =>
        e instanceof HoistError && e.code === 'HOIST_INVALID_ARGUMENT' && e.message.includes('filter'),
      bad,
    );
  }
});

const fieldArb = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/),
  fc.string({ maxLength: 8 }), // needs quoting (dots, spaces, quotes, unicode…)
);
const valueArb = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.:/@-]{1,12}$/), fc.string({ maxLength: 12 }));
const selectorArb: fc.Arbitrary<Selector> = fc.oneof(
  fc.record({
    fieldpath: fc.array(fieldArb, { minLength: 1, maxLength: 3 }),
    operator: fc.constantFrom('==' as const, '!=' as const),
    value: valueArb.filter((v) => v !== ''),
  }),
  fc.record({
    fieldpath: fc.array(fieldArb, { minLength: 1, maxLength: 3 }),
    operator: fc.constant('present' as const),
    value: fc.constant(''),
  }),
);

test('property: format then parse round-trips', () => {
  fc.assert(
    fc.property(fc.array(selectorArb, { minLength: 1, maxLength: 4 }), (conj: Conjunction) => {
      // fast-check builds null-prototype records; compare plain copies.
      const plain = conj.map((sel) => ({
        fieldpath: [...sel.fieldpath],
        operator: sel.operator,
        value: sel.value,
      }));
      assert.deepEqual(parseFilter(formatFilter(conj)), plain);
    }),
    { numRuns: 500 },
  );
});

test('property: the parser never throws anything but a HoistError', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (input) => {
      try {
        compileFilters([input]);
      } catch (e) {
        assert.ok(e instanceof HoistError && e.code === 'HOIST_INVALID_ARGUMENT', String(e));
      }
    }),
    { numRuns: 1000 },
  );
});

test('property: a selector for an equal value matches, a different value does not', () => {
  fc.assert(
    fc.property(
      fieldArb,
      valueArb.filter((v) => v !== ''),
      valueArb,
      (key, value, other) => {
        const labels = { [key]: value };
        const g: FieldGetter = (p) => (p[0] === 'labels' ? mapField(labels, p.slice(1)) : undefined);
        const f = formatFilter([{ fieldpath: ['labels', key], operator: '==', value }]);
        assert.equal(compileFilters([f]).match(g), true);
        const f2 = formatFilter([{ fieldpath: ['labels', key], operator: '==', value: other || 'x' }]);
        assert.equal(compileFilters([f2]).match(g), (other || 'x') === value);
      },
    ),
    { numRuns: 300 },
  );
});
