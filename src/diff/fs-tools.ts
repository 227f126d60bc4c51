// What Node cannot do itself: mknod(2) and setxattr(2). We run the standard tools (coreutils `mknod`,
// `setfattr` from the Debian package `attr`) and keep the number of processes small: device nodes are
// rare, and all xattrs of a layer go to one `setfattr --restore` run. The applier runs in a worker thread
// with synchronous calls, so it uses the synchronous forms; the differ (main thread) reads asynchronously.

import { childProcess } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const PACKAGE_OF: Record<string, string> = { mknod: 'coreutils', setfattr: 'attr', getfattr: 'attr' };

function run(cmd: string, args: string[], input?: string, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(cmd, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal,
    });
    let stdout = '';
    child.stdout!.setEncoding('latin1').on('data', (d: string) => {
      stdout += d;
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? notInstalled(cmd) : err);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr: stderr.trim() }));
    if (input !== undefined) {
      child.stdin!.on('error', () => undefined); // the exit status reports failures
      child.stdin!.end(input, 'latin1');
    }
  });
}

function notInstalled(cmd: string): HoistError {
  return new HoistError(
    'HOIST_FAILED_PRECONDITION',
    `${cmd} is not installed; hoist needs it to apply layers`,
    {
      hint: `install the '${PACKAGE_OF[cmd] ?? cmd}' package`,
    },
  );
}

function runSync(cmd: string, args: string[], input?: string): RunResult {
  const r = childProcess().spawnSync(cmd, args, {
    input: input === undefined ? undefined : Buffer.from(input, 'latin1'),
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw notInstalled(cmd);
    throw r.error;
  }
  return {
    code: r.status ?? 1,
    stdout: r.stdout.toString('latin1'),
    stderr: r.stderr
      .toString('utf8')
      .slice(0, 64 * 1024)
      .trim(),
  };
}

export type NodeKind = 'char' | 'block' | 'fifo';

/** Create a device node or FIFO at `path` (an ASCII temp name) with permission bits `mode`. */
export function makeNode(path: string, kind: NodeKind, mode: number, major = 0, minor = 0): void {
  const args = ['-m', (mode & 0o7777).toString(8), '--', path];
  if (kind === 'fifo') args.push('p');
  else args.push(kind === 'char' ? 'c' : 'b', String(major), String(minor));
  const r = runSync('mknod', args);
  if (r.code !== 0) {
    throw new HoistError(
      'HOIST_DENIED',
      `cannot create ${kind} node: ${r.stderr || `mknod exited ${r.code}`}`,
      {
        hint: 'device nodes and whiteouts need root (CAP_MKNOD), or Linux 5.8+ for whiteouts',
      },
    );
  }
}

export interface XattrWrite {
  /** Absolute path as a latin1 byte string. */
  path: string;
  /** Attribute name as a latin1 byte string. */
  name: string;
  value: Buffer;
}

/** getfattr's quoting: bytes outside printable ASCII, `\`, `=` and spaces as `\ooo`. */
function quote(bytes: string): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c || c === 0x3d) out += `\\${c.toString(8).padStart(3, '0')}`;
    else out += bytes[i];
  }
  return out;
}

export interface XattrOutcome {
  /** Writes the filesystem does not support (ENOTSUP): skipped, as containerd does, with a warning. */
  unsupported: string[];
}

/**
 * Set xattrs without following symlinks (`setfattr -h`), all in one process. Paths must already be
 * real paths inside the root (the applier guarantees it). Fails on anything but ENOTSUP.
 */
export function setXattrs(writes: XattrWrite[]): XattrOutcome {
  if (writes.length === 0) return { unsupported: [] };
  let dump = '';
  for (const w of writes)
    dump += `# file: ${quote(w.path)}\n${quote(w.name)}=0x${w.value.toString('hex')}\n\n`;
  const r = runSync('setfattr', ['-h', '--restore=-'], dump);
  if (r.code === 0) return { unsupported: [] };
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const unsupported = lines.filter((l) => /not supported/i.test(l));
  if (lines.length > 0 && unsupported.length === lines.length) return { unsupported };
  throw new HoistError(
    'HOIST_INTERNAL',
    `setting extended attributes failed: ${lines.slice(0, 3).join('; ')}`,
    {
      hint: 'the snapshot filesystem must support xattrs (trusted.* and security.* need root)',
    },
  );
}

/** Undo getfattr's `\\ooo` quoting (the result is a latin1 byte string). */
function unquote(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

function getfattrArgs(path: Buffer): string[] {
  return ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', path.toString()];
}

function parseGetfattr(r: RunResult): Array<[string, Buffer]> {
  if (r.code !== 0) {
    throw new HoistError(
      'HOIST_INTERNAL',
      `reading extended attributes failed: ${r.stderr || `getfattr exited ${r.code}`}`,
    );
  }
  const out: Array<[string, Buffer]> = [];
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (line.startsWith('#') || eq <= 0) continue;
    const value = line.slice(eq + 1);
    if (!value.startsWith('0x')) continue;
    out.push([unquote(line.slice(0, eq)), Buffer.from(value.slice(2), 'hex')]);
  }
  return out;
}

/** All xattrs of one file (not following a symlink), e.g. for the differ. */
export async function readXattrs(path: Buffer, signal?: AbortSignal): Promise<Array<[string, Buffer]>> {
  return parseGetfattr(await run('getfattr', getfattrArgs(path), undefined, signal));
}

/** readXattrs for the applier's worker thread (copying a lower layer's file up). */
export function readXattrsSync(path: Buffer): Array<[string, Buffer]> {
  return parseGetfattr(runSync('getfattr', getfattrArgs(path)));
}
