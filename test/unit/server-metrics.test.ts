// The metrics registry's exposition against the strict text-format parser (test/helpers/prom-text.ts),
// the parser's own strictness, and bytes-fetched accounting from a pull's progress reports.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from '../../src/server/metrics.ts';
import { FetchedBytes } from '../../src/server/telemetry.ts';
import { parsePrometheusText, sampleValue } from '../helpers/prom-text.ts';

test('counters, gauges and histograms render as text format 0.0.4', () => {
  const r = new Registry();
  const c = r.counter('x_requests_total', 'Requests, with a \\ and a\nnewline in the help.', [
    'method',
    'code',
  ]);
  const g = r.gauge('x_bytes', 'Bytes.');
  const h = r.histogram('x_seconds', 'Durations.', [0.1, 1, 10], ['op']);
  c.inc({ method: '/a.B/C', code: 'OK' });
  c.inc({ method: '/a.B/C', code: 'OK' }, 2);
  c.inc({ method: 'say "hi"\\\n', code: 'NotFound' });
  g.set(1.5e12);
  for (const v of [0.05, 0.1, 0.5, 5, 50]) h.observe(v, { op: 'pull' });
  h.touch({ op: 'push' });
  const text = r.expose();
  const f = parsePrometheusText(text);
  assert.equal(f.get('x_requests_total')?.type, 'counter');
  assert.equal(f.get('x_requests_total')?.help, 'Requests, with a \\ and a\nnewline in the help.');
  assert.equal(sampleValue(f, 'x_requests_total', { method: '/a.B/C', code: 'OK' }), 3);
  assert.equal(sampleValue(f, 'x_requests_total', { method: 'say "hi"\\\n', code: 'NotFound' }), 1);
  assert.equal(sampleValue(f, 'x_bytes'), 1.5e12);
  assert.equal(sampleValue(f, 'x_seconds_bucket', { op: 'pull', le: '0.1' }), 2, 'le is inclusive');
  assert.equal(sampleValue(f, 'x_seconds_bucket', { op: 'pull', le: '10' }), 4);
  assert.equal(sampleValue(f, 'x_seconds_bucket', { op: 'pull', le: '+Inf' }), 5);
  assert.equal(sampleValue(f, 'x_seconds_count', { op: 'pull' }), 5);
  assert.equal(sampleValue(f, 'x_seconds_sum', { op: 'pull' }), 55.65);
  assert.equal(sampleValue(f, 'x_seconds_count', { op: 'push' }), 0);
  assert.match(
    text,
    /^# HELP x_requests_total Requests, with a \\\\ and a\\nnewline in the help\.\n# TYPE x_requests_total counter\n/,
  );
  assert.ok(text.includes('x_requests_total{method="say \\"hi\\"\\\\\\n",code="NotFound"} 1\n'));

  assert.throws(() => r.counter('x_requests', 'no suffix'), /counters are named \*_total/);
  assert.throws(() => r.gauge('x-bad', 'name'), /invalid metric name/);
  assert.throws(() => r.gauge('x_ok', 'label', ['__reserved']), /invalid label name/);
  assert.throws(() => r.gauge('x_bytes', 'again'), /registered twice/);
  assert.throws(() => c.inc({}, -1), /only goes up/);
});

test('the parser refuses what Prometheus would', () => {
  const bad: [string, RegExp][] = [
    ['x 1', /newline/],
    ['x{a="1"} one\n', /not a float/],
    ['x{a="1} 1\n', /not closed|expected/],
    ['x{a="\\t"} 1\n', /bad escape/],
    ['x{a="1",a="2"} 1\n', /twice/],
    ['x{__a="1"} 1\n', /reserved/],
    ['x 1\n# TYPE x gauge\n', /too late/],
    ['x 1\ny 1\nx{a="b"} 2\n', /appears again/],
    ['x 1\nx 2\n', /twice/],
    ['# TYPE x counter\nx 1\n', /not named \*_total/],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
    [
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      /not _count|cumulative/,
    ],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n', /no _sum/],
    ['9x 1\n', /bad metric name/],
  ];
  for (const [text, err] of bad) assert.throws(() => parsePrometheusText(text), err, JSON.stringify(text));
  const ok = parsePrometheusText('# a comment\n# TYPE x gauge\nx{a="b"} +Inf 1700000000000\nx NaN\n');
  assert.equal(sampleValue(ok, 'x', { a: 'b' }), Number.POSITIVE_INFINITY);
});

test('bytes fetched: the growth between progress reports, not what a resumed ingest already had', () => {
  let total = 0;
  const b = new FetchedBytes((n) => {
    total += n;
  });
  // A fresh blob of 3 MiB, reported every MiB.
  b.progress('layer-a', { status: 'downloading', current: 0, total: 3 << 20 });
  for (const at of [1 << 20, 2 << 20, 3 << 20]) b.progress('layer-a', { status: 'downloading', current: at });
  b.progress('layer-a', { status: 'verifying', current: 3 << 20 });
  b.progress('layer-a', { status: 'done', current: 3 << 20 });
  assert.equal(total, 3 << 20);
  // A resumed blob: 5 MiB were on disk, 1 MiB more came.
  b.progress('layer-b', { status: 'downloading', current: 5 << 20 });
  b.progress('layer-b', { status: 'downloading', current: 6 << 20 });
  assert.equal(total, 4 << 20);
  // Resumed data that did not verify: downloaded again from 0.
  b.progress('layer-b', { status: 'downloading', current: 0 });
  b.progress('layer-b', { status: 'downloading', current: 6 << 20 });
  b.progress('layer-c', { status: 'exists', current: 100, total: 100 });
  assert.equal(total, 10 << 20);
});
