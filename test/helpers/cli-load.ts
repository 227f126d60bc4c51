// Sustained load on one embedded store from concurrent hoist processes: pullers, a remover, a pruner, a
// lister and a converter, each a loop of CLI runs for a set time. What counts: no lock error ("database is
// locked", SQLITE_BUSY, HOIST_LOCKED) reaches a user, every other failure is one the race explains (the
// image another loop just removed), and every loop makes progress. Used by
// test/integration/concurrent-cli.test.ts (~30 s) and bench/concurrent-cli.ts (minutes).
import type { HoistStore } from './run-hoist.ts';

export interface LoadImages {
  /** Pulled, removed and pruned over and over. */
  churn: string;
  /** Kept (pulled once beforehand), converted to new names over and over. */
  stable: string;
}

export interface LoopStats {
  name: string;
  runs: number;
  ok: number;
  /** Failures the race explains (removing an image another loop already removed). */
  raced: number;
  /** The first few of those messages, to tell an honest race from a fault (a pull's "not found"). */
  racedSamples: string[];
  /** Anything else: must be empty. */
  unexpected: string[];
  /** Runs whose output mentions a lock: must be zero. */
  lockErrors: number;
}

const LOCK = /database is locked|SQLITE_BUSY|HOIST_LOCKED|locked by another process|write lock/i;
/** The image another loop removed in between: a user-level outcome, not a fault. */
const RACED = /not found|no such image/i;

interface Loop {
  name: string;
  step(i: number): string[];
}

function loops(img: LoadImages): Loop[] {
  return [
    {
      name: 'pull (unpack)',
      step: () => ['pull', '--plain-http', '-q', '--snapshotter', 'native', img.churn],
    },
    { name: 'pull (fetch)', step: () => ['pull', '--plain-http', '-q', '--unpack=false', img.churn] },
    { name: 'rmi', step: () => ['rmi', img.churn] },
    { name: 'prune', step: (i) => (i % 2 ? ['image', 'prune'] : ['system', 'prune']) },
    { name: 'images', step: (i) => (i % 2 ? ['images'] : ['images', '--format', 'json']) },
    {
      name: 'convert',
      step: (i) => ['image', 'convert', '-q', '--uncompress', img.stable, `${img.stable}-conv${i % 3}`],
    },
  ];
}

/** Run every loop against `s` until `seconds` have passed; each loop's counts. */
export async function cliLoad(s: HoistStore, img: LoadImages, seconds: number): Promise<LoopStats[]> {
  const until = Date.now() + seconds * 1000;
  return Promise.all(
    loops(img).map(async (loop) => {
      const stats: LoopStats = {
        name: loop.name,
        runs: 0,
        ok: 0,
        raced: 0,
        racedSamples: [],
        unexpected: [],
        lockErrors: 0,
      };
      for (let i = 0; Date.now() < until; i++) {
        const args = loop.step(i);
        const r = await s.run(...args);
        stats.runs++;
        if (LOCK.test(r.stderr)) stats.lockErrors++;
        if (r.code === 0) stats.ok++;
        else if (RACED.test(r.stderr) && !LOCK.test(r.stderr)) {
          stats.raced++;
          if (stats.racedSamples.length < 5)
            stats.racedSamples.push(`hoist ${args.join(' ')}: ${r.stderr.trim()}`);
        } else stats.unexpected.push(`hoist ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
      }
      return stats;
    }),
  );
}

export function describeLoad(stats: LoopStats[]): string {
  return stats
    .map(
      (l) =>
        `${l.name}: ${l.runs} runs, ${l.ok} ok, ${l.raced} raced (not found), ${l.unexpected.length} unexpected, ${l.lockErrors} lock errors`,
    )
    .join('\n');
}
