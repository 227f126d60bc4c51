// containerd's filter language (pkg/filters), used by every List call:
//   labels.foo==bar,name~=^docker\.io/   (`,` = AND)      several strings = OR
//   operators: `==`, `!=`, `~=` (regular expression, unanchored), or a bare field path (present).
//   field paths are `.`-separated; a component may be quoted: labels."io.cri-containerd.image"==managed
//   values may be bare (no `,` or whitespace), "double quoted" with backslash escapes, or /slash quoted/.
import { invalidArgument } from '../core/errors.ts';

export type FilterOperator = 'present' | '==' | '!=' | '~=';

export interface Selector {
  fieldpath: string[];
  operator: FilterOperator;
  /** Empty for `present`. */
  value: string;
}

/** One filter string: all selectors must match. */
export type Conjunction = Selector[];

/** Returns the field's value, or undefined when the object has no such field. */
export type FieldGetter = (fieldpath: readonly string[]) => string | undefined;

export interface Filter {
  match(get: FieldGetter): boolean;
}

const FIELD_CHAR = /[A-Za-z0-9_-]/;
const WS = /\s/;

function syntaxError(input: string, pos: number, what: string): Error {
  return invalidArgument(
    `invalid filter ${JSON.stringify(input)}: ${what} at position ${pos}: invalid argument`,
    'filters look like labels.foo==bar,name~=^docker.io/ (`,` = and; quote unusual names: labels."a.b"==x)',
  );
}

class Parser {
  readonly input: string;
  pos = 0;

  constructor(input: string) {
    this.input = input;
  }

  get done(): boolean {
    return this.pos >= this.input.length;
  }

  peek(n = 0): string {
    return this.input[this.pos + n] ?? '';
  }

  skipSpace(): void {
    while (!this.done && WS.test(this.peek())) this.pos++;
  }

  fail(what: string): never {
    throw syntaxError(this.input, this.pos, what);
  }

  quoted(delim: string): string {
    const start = this.pos;
    this.pos++; // opening delimiter
    let out = '';
    while (!this.done) {
      const c = this.peek();
      if (c === delim) {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        const n = this.peek(1);
        if (n === '') break;
        this.pos += 2;
        if (n === 'n') out += '\n';
        else if (n === 't') out += '\t';
        else if (n === 'r') out += '\r';
        else if (n === delim || n === '\\') out += n;
        else out += delim === '/' ? `\\${n}` : n; // regexp escapes stay escapes
        continue;
      }
      out += c;
      this.pos++;
    }
    this.pos = start;
    return this.fail(`unterminated quoted string`);
  }

  field(): string {
    const c = this.peek();
    if (c === '"') return this.quoted('"');
    const start = this.pos;
    while (!this.done && FIELD_CHAR.test(this.peek())) this.pos++;
    if (this.pos === start)
      this.fail(c === '' ? 'expected a field name, got end of input' : `unexpected ${JSON.stringify(c)}`);
    return this.input.slice(start, this.pos);
  }

  operator(): FilterOperator | undefined {
    const two = this.input.slice(this.pos, this.pos + 2);
    if (two === '==' || two === '!=' || two === '~=') {
      this.pos += 2;
      return two;
    }
    return undefined;
  }

  value(): string {
    const c = this.peek();
    if (c === '"' || c === '/') return this.quoted(c);
    const start = this.pos;
    while (!this.done && this.peek() !== ',' && !WS.test(this.peek())) this.pos++;
    if (this.pos === start) this.fail('expected a value');
    return this.input.slice(start, this.pos);
  }

  selector(): Selector {
    this.skipSpace();
    const fieldpath = [this.field()];
    while (this.peek() === '.') {
      this.pos++;
      fieldpath.push(this.field());
    }
    this.skipSpace();
    const op = this.operator();
    if (!op) return { fieldpath, operator: 'present', value: '' };
    this.skipSpace();
    const value = this.value();
    if (op === '~=') compileRegExp(value, this.input);
    return { fieldpath, operator: op, value };
  }

  conjunction(): Conjunction {
    this.skipSpace();
    if (this.done) return [];
    const out = [this.selector()];
    for (;;) {
      this.skipSpace();
      if (this.done) return out;
      if (this.peek() !== ',')
        this.fail(`unexpected ${JSON.stringify(this.peek())}, expected "," or an operator`);
      this.pos++;
      out.push(this.selector());
    }
  }
}

function compileRegExp(source: string, input: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw invalidArgument(
      `invalid filter ${JSON.stringify(input)}: bad regular expression ${JSON.stringify(source)}: ${(err as Error).message}: invalid argument`,
    );
  }
}

/** Parse one filter string (`,`-separated selectors, all of which must match). Empty = match all. */
export function parseFilter(input: string): Conjunction {
  return new Parser(input).conjunction();
}

/** Render a parsed filter back to a string that parses to the same thing. */
export function formatFilter(c: Conjunction): string {
  const quoteField = (f: string) =>
    f !== '' && [...f].every((ch) => FIELD_CHAR.test(ch)) ? f : `"${f.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
  const quoteValue = (v: string) =>
    v !== '' && !/[\s,"/\\]/.test(v[0]!) && !/[\s,]/.test(v)
      ? v
      : `"${v.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
  return c
    .map((s) => {
      const path = s.fieldpath.map(quoteField).join('.');
      return s.operator === 'present' ? path : `${path}${s.operator}${quoteValue(s.value)}`;
    })
    .join(',');
}

function compileSelector(s: Selector, input: string): (get: FieldGetter) => boolean {
  switch (s.operator) {
    case 'present':
      return (get) => get(s.fieldpath) !== undefined;
    case '==':
      return (get) => get(s.fieldpath) === s.value;
    case '!=':
      // containerd: an absent field counts as "" (so it is != any non-empty value).
      return (get) => (get(s.fieldpath) ?? '') !== s.value;
    case '~=': {
      const re = compileRegExp(s.value, input);
      return (get) => re.test(get(s.fieldpath) ?? '');
    }
  }
}

/** Parse several filter strings: an object matches when any one of them matches (containerd ParseAll). */
export function compileFilters(filters: readonly string[] | undefined): Filter {
  const list = (filters ?? []).filter((f) => f.trim() !== '');
  if (list.length === 0) return { match: () => true };
  const alternatives = list.map((input) => {
    const selectors = parseFilter(input).map((s) => compileSelector(s, input));
    return (get: FieldGetter) => selectors.every((sel) => sel(get));
  });
  return { match: (get) => alternatives.some((alt) => alt(get)) };
}

/** Field getter helper: `labels.<k…>` (the rest of the path joined with `.`) from a map. */
export function mapField(
  map: Record<string, string> | undefined,
  rest: readonly string[],
): string | undefined {
  if (!map || rest.length === 0) return undefined;
  const v = map[rest.join('.')];
  return v === undefined ? undefined : v;
}
