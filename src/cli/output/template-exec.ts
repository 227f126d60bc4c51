// Runs a parsed --format template over one row, with Go text/template's rules where a script can see
// them: `<no value>` for a missing map key, Go's printing of lists (`[a b]`) and maps (`map[k:v]`),
// Go's truthiness, and the functions docker documents for --format (json, join, split, lower, upper,
// title, pad, truncate, println) beside text/template's own (and, or, not, len, index, eq, ne, lt, le,
// gt, ge, print, printf).
import { type Arg, type BlockNode, type Node, type Pipe, templateError } from './template-parse.ts';

/** Rows a command lists: a field they lack is a mistake (as docker's structs), not `<no value>`. */
const records = new WeakSet<object>();

export function asRecord<T extends object>(row: T): T {
  records.add(row);
  return row;
}

export interface ExecOptions {
  /** Header mode: a field of the row evaluates to its column header (for `table` templates). */
  header?: (field: string) => string;
}

type Vars = Map<string, unknown>[];

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Go's fmt `%v` of a value. */
export function goString(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map((x) => (x === null ? '<nil>' : goString(x))).join(' ')}]`;
  if (typeof v === 'object')
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goString((v as Record<string, unknown>)[k])}`)
      .join(' ')}]`;
  return String(v);
}

/** Go's fmt.Sprint: spaces between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += goString(a);
  });
  return out;
}

/** A small `printf`: %v %s %d %f %q %t %x %% with flags, width and precision. */
function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(
    /%([-+ 0#]*)(\d+)?(?:\.(\d+))?([vsdfqtx%])/g,
    (_m, flags: string, width, prec, verb) => {
      if (verb === '%') return '%';
      if (n >= args.length) return `%!${verb}(MISSING)`;
      const a = args[n++];
      let s: string;
      if (verb === 'd') s = String(Math.trunc(Number(a)));
      else if (verb === 'f') s = Number(a).toFixed(prec === undefined ? 6 : Number(prec));
      else if (verb === 'q') s = JSON.stringify(goString(a));
      else if (verb === 'x')
        s = typeof a === 'number' ? a.toString(16) : Buffer.from(goString(a)).toString('hex');
      else {
        s = goString(a);
        if (prec !== undefined) s = s.slice(0, Number(prec));
      }
      const w = width === undefined ? 0 : Number(width);
      if (s.length >= w) return s;
      if (flags.includes('-')) return s.padEnd(w);
      return flags.includes('0') && verb !== 's' ? s.padStart(w, '0') : s.padStart(w);
    },
  );
}

function compare(a: unknown, b: unknown, name: string): number {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string'))
    throw new Error(`${name}: incompatible types for comparison`);
  return (a as number | string) < (b as number | string) ? -1 : a === b ? 0 : 1;
}

function str(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`${fn}: expected a string, got ${goString(v)}`);
}

/** Functions that decide which arguments they evaluate (Go's and/or stop at the first deciding one). */
const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  join: (list, sep) => {
    if (!Array.isArray(list)) throw new Error(`join: expected a list, got ${goString(list)}`);
    return list.map(goString).join(str(sep, 'join'));
  },
  split: (s, sep) => str(s, 'split').split(str(sep, 'split')),
  lower: (s) => str(s, 'lower').toLowerCase(),
  upper: (s) => str(s, 'upper').toUpperCase(),
  title: (s) =>
    str(s, 'title').replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_m, p, c: string) => p + c.toUpperCase()),
  pad: (s, left, right) => `${' '.repeat(Number(left))}${str(s, 'pad')}${' '.repeat(Number(right))}`,
  truncate: (s, n) => [...str(s, 'truncate')].slice(0, Math.max(0, Number(n))).join(''),
  println: (...a) => `${a.map(goString).join(' ')}\n`,
  print: (...a) => sprint(a),
  printf: (f, ...a) => sprintf(str(f, 'printf'), a),
  not: (v) => !truthy(v),
  len: (v) => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new Error(`len of ${goString(v)}`);
  },
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (Array.isArray(cur)) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= cur.length)
          throw new Error(`index out of range: ${goString(k)}`);
        cur = cur[i];
      } else if (cur && typeof cur === 'object') cur = (cur as Record<string, unknown>)[goString(k)];
      else throw new Error(`can't index item of type ${typeof cur}`);
    }
    return cur;
  },
  eq: (a, ...bs) => bs.some((b) => compare(a, b, 'eq') === 0),
  ne: (a, b) => compare(a, b, 'ne') !== 0,
  lt: (a, b) => compare(a, b, 'lt') < 0,
  le: (a, b) => compare(a, b, 'le') <= 0,
  gt: (a, b) => compare(a, b, 'gt') > 0,
  ge: (a, b) => compare(a, b, 'ge') >= 0,
};

/** Names a template may call (and/or are special forms, handled where commands run). */
export function knownFunction(name: string): boolean {
  return name in FUNCS || name === 'and' || name === 'or';
}

export class Executor {
  readonly #src: string;
  readonly #opts: ExecOptions;

  constructor(src: string, opts: ExecOptions = {}) {
    this.#src = src;
    this.#opts = opts;
  }

  run(nodes: Node[], dot: unknown): string {
    return this.#nodes(nodes, dot, [new Map([['$', dot]])]);
  }

  #fail(pos: number, message: string): Error {
    return templateError(this.#src, pos, message);
  }

  #nodes(nodes: Node[], dot: unknown, vars: Vars): string {
    let out = '';
    for (const n of nodes) {
      if (n.kind === 'text') out += n.text;
      else if (n.kind === 'action') {
        const v = this.#pipe(n.pipe, dot, vars);
        if (n.pipe.decl.length === 0) out += goString(v);
      } else {
        const scope: Vars = [...vars, new Map()];
        if (n.kind === 'range') out += this.#range(n, dot, scope);
        else {
          const v = this.#pipe(n.pipe, dot, scope);
          if (truthy(v)) out += this.#nodes(n.body, n.kind === 'with' ? v : dot, scope);
          else out += this.#nodes(n.otherwise, dot, [...vars, new Map()]);
        }
      }
    }
    return out;
  }

  #range(n: BlockNode, dot: unknown, scope: Vars): string {
    const decl = n.pipe.decl;
    const v = this.#pipe({ ...n.pipe, decl: [] }, dot, scope);
    let entries: [unknown, unknown][];
    if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
    else if (typeof v === 'number' && Number.isInteger(v))
      entries = Array.from({ length: Math.max(0, v) }, (_x, i) => [i, i]);
    else if (v && typeof v === 'object')
      entries = Object.keys(v)
        .sort()
        .map((k) => [k, (v as Record<string, unknown>)[k]]);
    else if (v === undefined || v === null) entries = [];
    else throw this.#fail(n.pipe.pos, `range can't iterate over ${goString(v)}`);
    if (entries.length === 0) return this.#nodes(n.otherwise, dot, scope);
    let out = '';
    for (const [k, x] of entries) {
      const inner = new Map<string, unknown>();
      if (decl.length === 1) inner.set(decl[0]!, x);
      if (decl.length === 2) {
        inner.set(decl[0]!, k);
        inner.set(decl[1]!, x);
      }
      out += this.#nodes(n.body, x, [...scope, inner]);
    }
    return out;
  }

  #pipe(p: Pipe, dot: unknown, vars: Vars): unknown {
    let value: unknown;
    let first = true;
    for (const c of p.cmds) {
      const piped = first ? [] : [value];
      first = false;
      const [head, ...rest] = c.args;
      if (head!.kind === 'fn') value = this.#call(head!.name, head!.pos, rest, piped, dot, vars);
      else {
        if (rest.length > 0 || piped.length > 0)
          throw this.#fail(c.pos, `can't give arguments to a non-function ${describe(head!)}`);
        value = this.#arg(head!, dot, vars);
      }
    }
    if (p.decl.length > 0) vars[vars.length - 1]!.set(p.decl[p.decl.length - 1]!, value);
    return value;
  }

  #call(name: string, pos: number, args: Arg[], piped: unknown[], dot: unknown, vars: Vars): unknown {
    if (name === 'and' || name === 'or') {
      const all = [...args.map((a) => () => this.#arg(a, dot, vars)), ...piped.map((v) => () => v)];
      if (all.length === 0) throw this.#fail(pos, `wrong number of args for ${name}`);
      let last: unknown;
      for (const get of all) {
        last = get();
        if (name === 'and' ? !truthy(last) : truthy(last)) return last;
      }
      return last;
    }
    const fn = FUNCS[name];
    if (!fn) throw this.#fail(pos, `function "${name}" not defined`);
    const values = [...args.map((a) => this.#arg(a, dot, vars)), ...piped];
    try {
      return fn(...values);
    } catch (err) {
      throw this.#fail(pos, `error calling ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #arg(a: Arg, dot: unknown, vars: Vars): unknown {
    switch (a.kind) {
      case 'lit':
        return a.value;
      case 'fn':
        return this.#call(a.name, a.pos, [], [], dot, vars);
      case 'pipe':
        return this.#fields(this.#pipe(a.pipe, dot, [...vars, new Map()]), a.path, a.pos);
      case 'field': {
        if (a.base === 'dot') {
          if (this.#opts.header && a.path.length > 0) return this.#opts.header(a.path[0]!);
          return this.#fields(dot, a.path, a.pos);
        }
        for (let i = vars.length - 1; i >= 0; i--)
          if (vars[i]!.has(a.name)) return this.#fields(vars[i]!.get(a.name), a.path, a.pos);
        throw this.#fail(a.pos, `undefined variable "${a.name}"`);
      }
    }
  }

  #fields(v: unknown, path: string[], pos: number): unknown {
    let cur = v;
    for (const f of path) {
      if (cur === null || cur === undefined) return undefined;
      if (typeof cur !== 'object' || Array.isArray(cur))
        throw this.#fail(pos, `can't evaluate field ${f} in ${goString(cur)}`);
      if (!(f in cur) && records.has(cur)) {
        const known = Object.keys(cur).join(', ');
        throw this.#fail(pos, `can't evaluate field ${f} (fields: ${known})`);
      }
      cur = (cur as Record<string, unknown>)[f];
    }
    return cur;
  }
}

function describe(a: Arg): string {
  if (a.kind === 'lit') return JSON.stringify(a.value);
  if (a.kind === 'field') return `${a.base === 'var' ? a.name : ''}.${a.path.join('.')}`;
  return 'value';
}
