// What a pull, push or unpack reports about each blob, and what the CLI's progress display accepts.

export type ProgressStatus =
  | 'waiting'
  | 'resolving'
  | 'resolved'
  | 'downloading'
  | 'verifying'
  | 'done'
  | 'exists'
  | 'failed'
  | 'uploading'
  | 'mounted'
  | 'unpacking'
  | 'unpacked';

export interface ProgressState {
  status: ProgressStatus;
  current?: number;
  total?: number;
  detail?: string;
}

export interface ProgressReporter {
  update(key: string, state: ProgressState): void;
  /** A line of its own (a warning), kept above the progress. */
  log(line: string): void;
  /** The operation ended: show every blob's last state, then `summary`. */
  done(summary?: string): void;
}
