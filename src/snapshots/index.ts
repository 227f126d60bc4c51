// The snapshotters of a store: `native` and `overlayfs`, both under <root>/snapshots/<name>/.
import { currentOwner, isOwnerAlive as defaultIsOwnerAlive } from '../leases/owner.ts';
import type { MetadataDb } from '../metadata/db.ts';
import type { SnapshotDriver } from './driver.ts';
import { nativeDriver } from './native.ts';
import { overlayDriver } from './overlay.ts';
import { LocalSnapshotter } from './snapshotter.ts';
import { snapshotsRoot } from './storage.ts';

export const SNAPSHOTTER_NAMES = ['overlayfs', 'native'] as const;
export type SnapshotterName = (typeof SNAPSHOTTER_NAMES)[number];

const DRIVERS: Record<SnapshotterName, SnapshotDriver> = { overlayfs: overlayDriver, native: nativeDriver };

export interface OpenSnapshottersOptions {
  /** Process identity for staging directories (tests fabricate one to play a dead process). */
  owner?: string;
  isOwnerAlive?: (owner: string) => boolean;
}

/** All snapshotters of the store at `root` (the store root, not its snapshots/ directory). */
export function openSnapshotters(
  root: string,
  db: MetadataDb,
  opts: OpenSnapshottersOptions = {},
): Map<string, LocalSnapshotter> {
  const out = new Map<string, LocalSnapshotter>();
  for (const name of SNAPSHOTTER_NAMES) {
    out.set(
      name,
      new LocalSnapshotter({
        db,
        snapshotsDir: snapshotsRoot(root),
        driver: DRIVERS[name],
        owner: opts.owner ?? currentOwner(),
        isOwnerAlive: opts.isOwnerAlive ?? defaultIsOwnerAlive,
      }),
    );
  }
  return out;
}

export type {
  ApplyTarget,
  Mount,
  SnapshotInfo,
  SnapshotKind,
  Snapshotter,
  SnapshotUsage,
} from '../api/snapshots.ts';
