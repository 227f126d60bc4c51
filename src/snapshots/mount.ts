// Mounting snapshot mounts with mount(8)/umount(8). Only `hoist image mount` and tests mount anything:
// unpack writes directories directly, so snapshots work where mounting is not allowed.
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { Mount } from '../api/snapshots.ts';
import { childProcess } from '../core/builtins.ts';
import { HoistError } from '../core/errors.ts';
import { removeTree } from './storage.ts';

export interface OverlaySupport {
  supported: boolean;
  /** Why not, for messages and test skip reasons. */
  reason?: string;
}

/** The kernel copies mount data into one page: longer option strings need relative paths. */
const MAX_MOUNT_DATA = 4000;

interface RunResult {
  code: number;
  stderr: string;
}

function run(cmd: string, args: string[], cwd?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = childProcess().spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (err) => resolve({ code: -1, stderr: err.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr: stderr.trim() }));
  });
}

const isRoot = () => process.getuid?.() === 0;

function requireRoot(what: string): void {
  if (isRoot()) return;
  throw new HoistError('HOIST_DENIED', `${what} needs root (mount(2) is privileged)`, {
    hint: 'run as root, or use `hoist image unpack NAME --to DIR` for a plain copy of the files',
  });
}

let probe: Promise<OverlaySupport> | undefined;

/** Can this process mount overlayfs? Tried once with a tiny mount in a temporary directory. */
export function overlaySupport(): Promise<OverlaySupport> {
  probe ??= probeOverlay();
  return probe;
}

async function probeOverlay(): Promise<OverlaySupport> {
  if (!isRoot())
    return { supported: false, reason: 'overlay mounts need root and hoist is not running as root' };
  const dir = await mkdtemp(join(tmpdir(), 'hoist-overlay-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(dir, d));
    await writeFile(join(dir, 'lower', 'probe'), 'ok');
    const r = await run('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${join(dir, 'lower')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`,
      join(dir, 'merged'),
    ]);
    if (r.code !== 0)
      return {
        supported: false,
        reason: `the kernel refused a test overlay mount: ${r.stderr || `exit ${r.code}`}`,
      };
    const seen = await readFile(join(dir, 'merged', 'probe'), 'utf8').catch(() => '');
    await run('umount', [join(dir, 'merged')]);
    return seen === 'ok'
      ? { supported: true }
      : { supported: false, reason: 'a test overlay mount did not show its lower directory' };
  } finally {
    await removeTree(dir).catch(() => undefined);
  }
}

/** Longest common directory of absolute paths. */
function commonDir(paths: string[]): string {
  let common = dirname(paths[0]!);
  for (const p of paths)
    while (!(p === common || p.startsWith(common.endsWith(sep) ? common : common + sep)))
      common = dirname(common);
  return common;
}

/** Overlay options with paths relative to a common directory (mount runs there) when too long. */
function overlayArgs(options: string[]): { options: string[]; cwd?: string } {
  if (options.join(',').length <= MAX_MOUNT_DATA) return { options };
  const pathOpts = ['lowerdir=', 'upperdir=', 'workdir='];
  const paths: string[] = [];
  for (const o of options) {
    const prefix = pathOpts.find((p) => o.startsWith(p));
    if (prefix) paths.push(...o.slice(prefix.length).split(':'));
  }
  const cwd = commonDir(paths);
  const rewritten = options.map((o) => {
    const prefix = pathOpts.find((p) => o.startsWith(p));
    if (!prefix) return o;
    return (
      prefix +
      o
        .slice(prefix.length)
        .split(':')
        .map((p) => relative(cwd, p) || '.')
        .join(':')
    );
  });
  return { options: rewritten, cwd };
}

/** Mount `mounts` on `target` in order (a later mount may stack on an earlier one); all or nothing. */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  requireRoot(`mounting on ${target}`);
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const point = m.target ? join(target, m.target) : target;
      let args: string[];
      let cwd: string | undefined;
      if (m.type === 'bind') {
        args = [
          '-o',
          m.options.includes('rbind') || m.options.includes('bind')
            ? m.options.join(',')
            : ['bind', ...m.options].join(','),
          m.source,
          point,
        ];
      } else if (m.type === 'overlay') {
        const support = await overlaySupport();
        if (!support.supported)
          throw new HoistError(
            'HOIST_FAILED_PRECONDITION',
            `cannot mount overlay on ${point}: ${support.reason}`,
            {
              hint: 'use the native snapshotter (--snapshotter native), or run where overlay mounts are allowed',
            },
          );
        const o = overlayArgs(m.options);
        cwd = o.cwd;
        args = ['-t', 'overlay', '-o', o.options.join(','), m.source, point];
      } else {
        args = ['-t', m.type, ...(m.options.length > 0 ? ['-o', m.options.join(',')] : []), m.source, point];
      }
      const r = await run('mount', args, cwd);
      if (r.code !== 0)
        throw new HoistError(
          'HOIST_FAILED_PRECONDITION',
          `mount ${m.type} on ${point} failed: ${r.stderr || `exit ${r.code}`}`,
        );
      done.push(point);
    }
  } catch (err) {
    for (const point of done.reverse()) await run('umount', [point]);
    throw err;
  }
}

/** Unmount `target` and anything mounted below it. */
export async function unmount(target: string): Promise<void> {
  requireRoot(`unmounting ${target}`);
  const r = await run('umount', ['-R', target]);
  if (r.code === 0) return;
  if (/not mounted|no mount point/i.test(r.stderr))
    throw new HoistError('HOIST_FAILED_PRECONDITION', `${target} is not mounted`);
  throw new HoistError(
    'HOIST_FAILED_PRECONDITION',
    `unmounting ${target} failed: ${r.stderr || `exit ${r.code}`}`,
    {
      hint: 'a process may still use files below it (see `fuser -vm DIR`)',
    },
  );
}
