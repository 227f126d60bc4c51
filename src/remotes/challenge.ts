// WWW-Authenticate parsing (RFC 9110 §11.6.1): several challenges per header, comma-separated
// auth-params with token or quoted-string values (which may themselves contain commas and escaped
// quotes), and token68 credentials. Registries put the Bearer realm, service and scope here.

export interface Challenge {
  /** Lower-cased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Lower-cased parameter names → values (quotes and escapes removed). */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

class Scanner {
  pos = 0;
  readonly s: string;
  constructor(s: string) {
    this.s = s;
  }
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  token68(): string {
    const start = this.pos;
    while (!this.done && TOKEN68_CHAR.test(this.peek())) this.pos++;
    while (this.peek() === '=') this.pos++;
    return this.s.slice(start, this.pos);
  }
  quoted(): string {
    // assumes peek() === '"'
    this.pos++;
    let out = '';
    while (!this.done) {
      const c = this.s[this.pos++]!;
      if (c === '\\' && !this.done) out += this.s[this.pos++];
      else if (c === '"') return out;
      else out += c;
    }
    return out; // unterminated: take what there is
  }
}

/** Parse one or more WWW-Authenticate header values into challenges, in order. */
export function parseChallenges(headerValues: string | string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of Array.isArray(headerValues) ? headerValues : [headerValues]) {
    const s = new Scanner(value);
    let current: Challenge | undefined;
    while (!s.done) {
      while (s.peek() === ',' || s.peek() === ' ' || s.peek() === '\t') s.pos++;
      if (s.done) break;
      const name = s.token();
      if (name === '') {
        s.pos++; // stray character: skip it
        continue;
      }
      s.skipSpaces();
      if (current && s.peek() === '=') {
        s.pos++;
        s.skipSpaces();
        const v = s.peek() === '"' ? s.quoted() : s.token();
        current.params[name.toLowerCase()] = v;
        continue;
      }
      // No prototype: a parameter the header did not send (`constructor`, `__proto__`) must read as absent,
      // and one it did send is kept like any other.
      current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
      out.push(current);
      // A token68 (`Basic dXNlcg==`) is a single item ending at a comma or the end; a param name
      // followed by `=` and a value is not.
      const save = s.pos;
      const t = s.token68();
      s.skipSpaces();
      if (t !== '' && (s.done || s.peek() === ',')) current.token68 = t;
      else s.pos = save;
    }
  }
  return out;
}

/** Repository scopes from a challenge's `scope` param (space-separated, per the token spec). */
export function challengeScopes(c: Challenge): string[] {
  return (c.params.scope ?? '').split(' ').filter((x) => x !== '');
}
