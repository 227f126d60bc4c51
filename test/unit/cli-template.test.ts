// The --format template subset: what docker's documented examples print, Go's printing rules, and the
// position of a mistake in the error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatInspect, formatListing, pascalKeys, renderTemplate } from '../../src/cli/output/format.ts';
import { isHoistError } from '../../src/core/errors.ts';

const one = (t: string, row: object) => renderTemplate(t, [row])[0];

test('fields, nested fields, variables and literals', () => {
  const row = { ID: 'abc', Config: { Env: ['A=1', 'B=2'], Labels: { x: 'y' } }, Size: 12 };
  assert.equal(one('{{.ID}}', row), 'abc');
  assert.equal(one('{{.Config.Labels.x}} {{.Config.Labels.missing}}', row), 'y <no value>');
  assert.equal(one('{{.Config.Env}}', row), '[A=1 B=2]');
  assert.equal(one('{{.Config.Labels}}', row), 'map[x:y]');
  assert.equal(one('{{$x := .Size}}{{$x}} {{"q\\t"}}{{`raw`}} {{3}} {{true}}', row), '12 q\traw 3 true');
  assert.equal(one('{{(.Config).Labels.x}}', row), 'y');
});

test("docker's documented functions", () => {
  const row = { Names: ['a', 'b'], Status: 'Up 2 hours', Name: 'hello WORLD', Labels: { k: 'v' } };
  assert.equal(one('{{join .Names " , "}}', row), 'a , b');
  assert.equal(one('{{json .Names}}', row), '["a","b"]');
  assert.equal(one('{{json .}}', { A: '<&>' }), '{"A":"<&>"}', 'no HTML escaping, as docker');
  assert.equal(
    one('{{lower .Name}} {{upper .Name}} {{title "hello world"}}', row),
    'hello world HELLO WORLD Hello World',
  );
  assert.equal(one('{{split .Status " "}}', row), '[Up 2 hours]');
  assert.equal(one('{{index (split .Status " ") 1}}', row), '2');
  assert.equal(one('{{pad .Status 2 3}}|', row), '  Up 2 hours   |');
  assert.equal(one('{{truncate .Status 4}}', row), 'Up 2');
  assert.equal(one('{{.Status | println}}', row), 'Up 2 hours\n');
  assert.equal(one('{{.Name | lower | upper}}', row), 'HELLO WORLD');
  assert.equal(one('{{printf "%-6s|%3d" "ab" 7}}', row), 'ab    |  7');
  assert.equal(
    one('{{len .Names}} {{eq .Status "Up 2 hours"}} {{ne 1 2}} {{lt 1 2}}', row),
    '2 true true true',
  );
});

test('if/else if/else, range, with, trim markers', () => {
  const row = { Names: ['a', 'b'], Empty: [], Labels: { b: '2', a: '1' }, N: 0 };
  assert.equal(one('{{range .Names}}<{{.}}>{{end}}', row), '<a><b>');
  assert.equal(one('{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}', row), '0=a 1=b ');
  assert.equal(one('{{range $k, $v := .Labels}}{{$k}}:{{$v}};{{end}}', row), 'a:1;b:2;');
  assert.equal(one('{{range .Empty}}x{{else}}none{{end}}', row), 'none');
  assert.equal(one('{{if .N}}yes{{else if .Names}}names{{else}}no{{end}}', row), 'names');
  assert.equal(one('{{if and .Names (not .N)}}ok{{end}}', row), 'ok');
  assert.equal(one('{{with .Labels}}{{.a}}{{end}}', row), '1');
  assert.equal(one('a  {{- "b" -}}  c', row), 'abc');
  assert.equal(one('{{/* a comment */}}x', row), 'x');
});

test('a bad template fails with HOIST_INVALID_ARGUMENT naming the position', () => {
  const bad: [string, RegExp][] = [
    ['{{.ID', /line 1, column 1: unclosed action/],
    ['ab\n{{if .ID}}x', /line 2, column 1: unclosed \{\{if\}\}/],
    ['{{nofunc .ID}}', /line 1, column 3: function "nofunc" not defined/],
    ['{{.ID}} {{end}}', /line 1, column 11: unexpected \{\{end\}\}/],
    ['{{.Nope}}', /line 1, column 3: can't evaluate field Nope/],
    ['{{"abc}}', /unclosed action|unterminated string/],
    ['{{ ) }}', /line 1, column 4: missing value for command/],
  ];
  for (const [t, re] of bad)
    assert.throws(
      () => renderTemplate(t, [{ ID: 'x' }]),
      (err: unknown) => isHoistError(err) && err.code === 'HOIST_INVALID_ARGUMENT' && re.test(err.message),
      t,
    );
});

test("table TEMPLATE: docker's headers and column widths; json: one object per line", () => {
  const listing = {
    rows: [
      { ID: '0123456789ab', Repository: 'busybox', Size: '4.26MB' },
      { ID: 'ba9876543210', Repository: 'example.com/a/long-name', Size: '1GB' },
    ],
    headers: { ID: 'IMAGE ID', Repository: 'REPOSITORY' },
    table: () => 'default\n',
  };
  assert.equal(formatListing(undefined, listing), 'default\n');
  assert.equal(formatListing('table', listing), 'default\n');
  assert.equal(
    formatListing('table {{.ID}}\\t{{.Repository}}\\t{{.Size}}', listing),
    [
      'IMAGE ID       REPOSITORY                SIZE',
      '0123456789ab   busybox                   4.26MB',
      'ba9876543210   example.com/a/long-name   1GB',
      '',
    ].join('\n'),
  );
  assert.equal(formatListing('json', listing), listing.rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  assert.equal(formatListing('{{json .}}', listing), formatListing('json', listing));
  assert.equal(formatListing('{{.ID}}: {{.Size}}', listing), '0123456789ab: 4.26MB\nba9876543210: 1GB\n');
  assert.equal(formatInspect('{{.Id}}', [{ Id: 'a' }, { Id: 'b' }]), 'a\nb\n');
});

test("pascalKeys: the library's objects in --format's key style, label keys kept", () => {
  assert.deepEqual(
    pascalKeys({
      id: 'l1',
      ownerAlive: true,
      labels: { 'hoist.io/x': '1' },
      items: [{ ref: 'r', bySnapshotter: [] }],
    }),
    { ID: 'l1', OwnerAlive: true, Labels: { 'hoist.io/x': '1' }, Items: [{ Ref: 'r', BySnapshotter: [] }] },
  );
});
