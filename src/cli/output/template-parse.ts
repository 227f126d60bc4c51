// The parser of the Go text/template subset `--format` accepts (the language docker's --format is
// written in): text, {{actions}} with {{- -}} trimming, fields and nested fields (.A.B, $v.A), pipelines
// of functions, string/raw-string/number/bool literals, parenthesized pipelines, variables declared by
// `:=`, and if/else if/else, range/else and with/else blocks closed by end. A mistake is reported with
// its line and column, so a script's author can find it.
import { invalidArgument } from '../../core/errors.ts';

export type Arg =
  | { kind: 'field'; base: 'dot' | 'var'; name: string; path: string[]; pos: number }
  | { kind: 'fn'; name: string; pos: number }
  | { kind: 'lit'; value: string | number | boolean | null; pos: number }
  | { kind: 'pipe'; pipe: Pipe; path: string[]; pos: number };

export interface Cmd {
  args: Arg[];
  pos: number;
}

export interface Pipe {
  /** Variables the pipeline declares (`$v :=`, or `$i, $v :=` in range). */
  decl: string[];
  cmds: Cmd[];
  pos: number;
}

export type Node = { kind: 'text'; text: string } | { kind: 'action'; pipe: Pipe } | BlockNode;

export interface BlockNode {
  kind: 'if' | 'with' | 'range';
  pipe: Pipe;
  body: Node[];
  otherwise: Node[];
}

interface Token {
  t: 'ident' | 'field' | 'var' | 'str' | 'num' | 'punct' | 'end';
  v: string;
  pos: number;
}

/** Where `pos` is in `src`, as `line L, column C`. */
export function position(src: string, pos: number): string {
  const before = src.slice(0, pos);
  const line = before.split('\n').length;
  return `line ${line}, column ${pos - before.lastIndexOf('\n')}`;
}

export function templateError(src: string, pos: number, message: string): Error {
  return invalidArgument(
    `invalid --format template at ${position(src, pos)}: ${message}`,
    'see https://docs.docker.com/config/formatting/ (fields as {{.Name}}, functions such as json, join, upper)',
  );
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /[-+]?(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/y;

/** The tokens of one action's inside, `src.slice(start, stop)`. */
function lex(src: string, start: number, stop: number): Token[] {
  const out: Token[] = [];
  let i = start;
  const err = (m: string) => templateError(src, i, m);
  const word = (from: number): string => {
    IDENT.lastIndex = from;
    const m = IDENT.exec(src);
    return m && m.index + m[0].length <= stop ? m[0] : '';
  };
  while (i < stop) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '.' || c === '$') {
      // A field chain: `.`, `.A.B`, `$`, `$v`, `$v.A`.
      const pos = i;
      let v = c;
      i++;
      if (c === '$') {
        const w = word(i);
        v += w;
        i += w.length;
      } else {
        const w = word(i);
        v += w;
        i += w.length;
      }
      while (src[i] === '.' && i < stop) {
        const w = word(i + 1);
        if (!w) throw templateError(src, i, 'a field name must follow "."');
        v += `.${w}`;
        i += 1 + w.length;
      }
      out.push({ t: c === '$' ? 'var' : 'field', v, pos });
      continue;
    }
    if (c === '"' || c === '`') {
      const pos = i;
      let j = i + 1;
      while (j < stop && src[j] !== c) j += c === '"' && src[j] === '\\' ? 2 : 1;
      if (j >= stop) throw err('unterminated string');
      const raw = src.slice(i, j + 1);
      let v: string;
      if (c === '`') v = raw.slice(1, -1);
      else {
        try {
          // Go's quoted strings: JSON's, plus \' and \xNN; a raw tab (docker turns `\t` into one first) is kept.
          const json = raw
            .replace(/\\'/g, "'")
            .replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')
            .replace(/[\u0000-\u001f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
          v = JSON.parse(json) as string;
        } catch {
          throw err(`bad string ${raw}`);
        }
      }
      out.push({ t: 'str', v, pos });
      i = j + 1;
      continue;
    }
    if (c === "'") {
      // A character constant is its code point, as in Go.
      const m = /^'(\\?.)'/u.exec(src.slice(i, stop));
      if (!m) throw err('bad character constant');
      const ch = m[1]!.length === 2 ? (JSON.parse(`"${m[1]}"`) as string) : m[1]!;
      out.push({ t: 'num', v: String(ch.codePointAt(0)), pos: i });
      i += m[0].length;
      continue;
    }
    NUMBER.lastIndex = i;
    const n = /[-+\d]/.test(c) ? NUMBER.exec(src) : null;
    if (n && n.index + n[0].length <= stop) {
      out.push({ t: 'num', v: n[0], pos: i });
      i += n[0].length;
      continue;
    }
    const w = word(i);
    if (w) {
      out.push({ t: 'ident', v: w, pos: i });
      i += w.length;
      continue;
    }
    if (src.startsWith(':=', i)) {
      out.push({ t: 'punct', v: ':=', pos: i });
      i += 2;
      continue;
    }
    if ('|(),='.includes(c)) {
      out.push({ t: 'punct', v: c, pos: i });
      i++;
      continue;
    }
    throw err(`unexpected ${JSON.stringify(c)} in action`);
  }
  out.push({ t: 'end', v: '', pos: stop });
  return out;
}

interface Action {
  tokens: Token[];
  pos: number;
}

/** Splits the source into text and actions, applying the `{{-`/`-}}` trim markers to the text around. */
function split(src: string): (string | Action)[] {
  const parts: (string | Action)[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) parts.push(text);
      break;
    }
    let start = open + 2;
    if (/^- /.test(src.slice(start, start + 2)) || src.slice(start, start + 2) === '-\t') {
      text = text.replace(/\s+$/, '');
      start += 2;
    }
    if (text) parts.push(text);
    // Comments `{{/* ... */}}` produce nothing.
    const inner = src.slice(start).trimStart();
    if (inner.startsWith('/*')) {
      const endc = src.indexOf('*/', start);
      const close = endc < 0 ? -1 : src.indexOf('}}', endc);
      if (close < 0) throw templateError(src, open, 'unclosed comment');
      trimNext = /\s-$/.test(src.slice(0, close));
      i = close + 2;
      continue;
    }
    let close = -1;
    // The closing `}}` outside any string literal.
    for (let j = start, quote = ''; j < src.length; j++) {
      const c = src[j]!;
      if (quote) {
        if (c === '\\' && quote === '"') j++;
        else if (c === quote) quote = '';
      } else if (c === '"' || c === '`') quote = c;
      else if (src.startsWith('}}', j)) {
        close = j;
        break;
      }
    }
    if (close < 0) throw templateError(src, open, 'unclosed action (no matching "}}")');
    let stop = close;
    trimNext = false;
    if (/[ \t\n]-$/.test(src.slice(start, close))) {
      stop = close - 1;
      trimNext = true;
    }
    parts.push({ tokens: lex(src, start, stop), pos: open });
    i = close + 2;
  }
  return parts;
}

class Parser {
  readonly #src: string;
  #toks: Token[] = [];
  #at = 0;

  constructor(src: string) {
    this.#src = src;
  }

  error(pos: number, message: string): Error {
    return templateError(this.#src, pos, message);
  }

  begin(tokens: Token[]): void {
    this.#toks = tokens;
    this.#at = 0;
  }

  peek(): Token {
    return this.#toks[this.#at]!;
  }

  next(): Token {
    const t = this.#toks[this.#at]!;
    if (t.t !== 'end') this.#at++;
    return t;
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.t !== 'end') throw this.error(t.pos, `unexpected ${JSON.stringify(t.v)} in action`);
  }

  /** `[$a[, $b] :=] cmd | cmd ...` up to `)` or the end of the action. */
  pipe(allowDecl: boolean, inParen: boolean): Pipe {
    const start = this.peek().pos;
    const decl: string[] = [];
    const save = this.#at;
    if (this.peek().t === 'var') {
      const names = [this.next()];
      if (allowDecl && this.peek().v === ',') {
        this.next();
        if (this.peek().t !== 'var') throw this.error(this.peek().pos, 'a variable must follow ","');
        names.push(this.next());
      }
      if (this.peek().v === ':=' || this.peek().v === '=') {
        this.next();
        decl.push(...names.map((n) => n.v));
      } else this.#at = save;
    }
    const cmds: Cmd[] = [];
    for (;;) {
      const args: Arg[] = [];
      const pos = this.peek().pos;
      while (this.peek().t !== 'end' && this.peek().v !== '|' && this.peek().v !== ')')
        args.push(this.operand());
      if (args.length === 0) throw this.error(pos, 'missing value for command');
      cmds.push({ args, pos });
      if (this.peek().v !== '|') break;
      this.next();
    }
    if (inParen) {
      const t = this.next();
      if (t.v !== ')') throw this.error(t.pos, 'unclosed "("');
    }
    return { decl, cmds, pos: start };
  }

  operand(): Arg {
    const t = this.next();
    switch (t.t) {
      case 'field':
      case 'var': {
        const [head, ...path] = t.v.split('.');
        if (t.t === 'field')
          return { kind: 'field', base: 'dot', name: '', path: t.v === '.' ? [] : path, pos: t.pos };
        return { kind: 'field', base: 'var', name: head!, path, pos: t.pos };
      }
      case 'str':
        return { kind: 'lit', value: t.v, pos: t.pos };
      case 'num':
        return { kind: 'lit', value: Number(t.v), pos: t.pos };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { kind: 'lit', value: t.v === 'true', pos: t.pos };
        if (t.v === 'nil') return { kind: 'lit', value: null, pos: t.pos };
        if (KEYWORDS.has(t.v)) throw this.error(t.pos, `unexpected keyword "${t.v}" in operand`);
        return { kind: 'fn', name: t.v, pos: t.pos };
      case 'punct':
        if (t.v === '(') {
          const pipe = this.pipe(false, true);
          // `(pipeline).Field`
          const f = this.peek();
          const path =
            f.t === 'field' && this.#toks[this.#at - 1]!.pos + 1 === f.pos ? f.v.split('.').slice(1) : [];
          if (path.length > 0) this.next();
          return { kind: 'pipe', pipe, path, pos: t.pos };
        }
        throw this.error(t.pos, `unexpected "${t.v}" in operand`);
      default:
        throw this.error(t.pos, 'unexpected end of action');
    }
  }
}

const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
]);

/** Parses a template; throws HOIST_INVALID_ARGUMENT naming the line and column of the first mistake. */
export function parseTemplate(src: string): Node[] {
  const parts = split(src);
  const p = new Parser(src);
  let at = 0;
  // Returns the nodes up to an `else` or `end` (which it reports) or the end of the source.
  const list = (
    closer: boolean,
  ): {
    nodes: Node[];
    stop: 'else' | 'end' | 'eof';
    elseIf?: Pipe;
    elseKind?: 'if' | 'with';
    pos: number;
  } => {
    const nodes: Node[] = [];
    while (at < parts.length) {
      const part = parts[at++]!;
      if (typeof part === 'string') {
        nodes.push({ kind: 'text', text: part });
        continue;
      }
      p.begin(part.tokens);
      const first = p.peek();
      if (first.t === 'ident' && (first.v === 'end' || first.v === 'else')) {
        p.next();
        if (!closer) throw p.error(first.pos, `unexpected {{${first.v}}}`);
        if (first.v === 'end') {
          p.expectEnd();
          return { nodes, stop: 'end', pos: part.pos };
        }
        const chained = p.peek();
        if (chained.t === 'ident' && (chained.v === 'if' || chained.v === 'with')) {
          p.next();
          const elseIf = p.pipe(true, false);
          p.expectEnd();
          return { nodes, stop: 'else', elseIf, elseKind: chained.v, pos: part.pos };
        }
        p.expectEnd();
        return { nodes, stop: 'else', pos: part.pos };
      }
      if (first.t === 'ident' && (first.v === 'if' || first.v === 'range' || first.v === 'with')) {
        p.next();
        nodes.push(block(first.v, p.pipe(true, false), part.pos));
        continue;
      }
      if (first.t === 'ident' && KEYWORDS.has(first.v))
        throw p.error(first.pos, `{{${first.v}}} is not supported in --format`);
      const pipe = p.pipe(true, false);
      p.expectEnd();
      nodes.push({ kind: 'action', pipe });
    }
    return { nodes, stop: 'eof', pos: src.length };
  };
  const block = (kind: 'if' | 'range' | 'with', pipe: Pipe, pos: number): Node => {
    p.expectEnd();
    const body = list(true);
    if (body.stop === 'eof') throw p.error(pos, `unclosed {{${kind}}}: missing {{end}}`);
    if (body.stop === 'end') return { kind, pipe, body: body.nodes, otherwise: [] };
    if (body.elseIf) {
      // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the one `{{end}}`.
      const inner = block(body.elseKind!, body.elseIf, body.pos);
      return { kind, pipe, body: body.nodes, otherwise: [inner] };
    }
    const rest = list(true);
    if (rest.stop !== 'end') throw p.error(rest.pos, `{{${kind}}}: expected {{end}} after {{else}}`);
    return { kind, pipe, body: body.nodes, otherwise: rest.nodes };
  };
  const top = list(false);
  return top.nodes;
}
