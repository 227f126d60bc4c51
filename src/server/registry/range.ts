// One `Range: bytes=…` over a blob of known size (RFC 9110 §14). Several ranges are answered with the whole
// blob (a server may ignore Range); a range that starts past the end is 416. Registries' clients (containerd's
// resume, skopeo) only ever ask for one `bytes=<start>-`.

export type RangeAnswer =
  | { kind: 'whole' }
  | { kind: 'part'; start: number; end: number }
  | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'whole' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  // Malformed or multi-range: ignore it, as RFC 9110 allows.
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  if (m[1] === '') {
    // bytes=-N: the last N bytes.
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return { kind: 'whole' };
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last)) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  if (last < start) return { kind: 'whole' };
  return { kind: 'part', start, end: Math.min(last, size - 1) };
}
