// Run the real hoist CLI as a child process against a temporary store.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NODE = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'node');
export const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HoistStore {
  root: string;
  home: string;
  run(...args: string[]): Promise<RunResult>;
  /** Run and require exit 0; returns stdout. */
  ok(...args: string[]): Promise<string>;
  cleanup(): Promise<void>;
}

/** A store in a new temp directory (under `parent`, e.g. a small loop-mounted file system, when given). */
export async function tempStore(parent = tmpdir()): Promise<HoistStore> {
  const dir = await mkdtemp(join(parent, 'hoist-it-'));
  const root = join(dir, 'root');
  const home = join(dir, 'home');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    DOCKER_CONFIG: join(home, '.docker'),
  };
  delete env.HOIST_NAMESPACE;
  // The caller's shell must not pick another store, config, namespace or daemon for the test.
  for (const k of ['HOIST_ROOT', 'HOIST_CONFIG', 'CONTAINERD_NAMESPACE', 'CONTAINERD_ADDRESS']) delete env[k];
  const run = (...args: string[]) =>
    new Promise<RunResult>((resolve) => {
      execFile(
        NODE,
        [MAIN, '--root', root, ...args],
        { env, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err
            ? typeof (err as { code?: unknown }).code === 'number'
              ? (err as { code: number }).code
              : 1
            : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  return {
    root,
    home,
    run,
    async ok(...args) {
      const r = await run(...args);
      if (r.code !== 0) throw new Error(`hoist ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Data rows of a table (header dropped), split on runs of 2+ spaces. */
/** Output of `--format json`: one JSON object per line, as docker prints it. */
export function jsonLines<T = Record<string, unknown>>(out: string): T[] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export function tableRows(out: string): string[][] {
  return out
    .trim()
    .split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}/));
}

/**
 * `system check --format json`'s report (PascalCase keys, as every --format) as the library's
 * ConsistencyReport (camelCase): keys are turned back, so a report in any other key style reads as empty.
 */
export function checkReport<T>(stdout: string): T {
  const camel = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(camel);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [
        /^[A-Z]/.test(k) ? k[0]!.toLowerCase() + k.slice(1) : `!${k}`,
        camel(x),
      ]),
    );
  };
  return camel(JSON.parse(stdout)) as T;
}
