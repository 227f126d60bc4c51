// Human-readable sizes and ages, matching what docker/nerdctl (go-units) and ctr print.

const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * Like go-units HumanSize: decimal units, 4 significant digits (`211.5MB`, `1.234kB`, `0B`);
 * `precision` as HumanSizeWithPrecision (docker history uses 3).
 */
export function humanSize(bytes: number, precision = 4): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < DECIMAL.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(precision))}${DECIMAL[i]}`;
}

/** Like ctr's progress.Bytes: binary units with one decimal (`1.2 KiB`, `284.0 B`). */
export function binarySize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < BINARY.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${BINARY[i]}`;
}

/** Like go-units HumanDuration plus " ago": `Less than a second ago`, `About an hour ago`, `3 days ago`. */
export function timeAgo(when: Date, now: Date = new Date()): string {
  const seconds = Math.max(0, (now.getTime() - when.getTime()) / 1000);
  const s = Math.floor(seconds);
  const minutes = Math.floor(seconds / 60);
  const hours = Math.round(seconds / 3600);
  let text: string;
  if (s < 1) text = 'Less than a second';
  else if (s === 1) text = '1 second';
  else if (s < 60) text = `${s} seconds`;
  else if (minutes === 1) text = 'About a minute';
  else if (minutes < 60) text = `${minutes} minutes`;
  else if (hours === 1) text = 'About an hour';
  else if (hours < 48) text = `${hours} hours`;
  else if (hours < 24 * 7 * 2) text = `${Math.floor(hours / 24)} days`;
  else if (hours < 24 * 30 * 2) text = `${Math.floor(hours / 24 / 7)} weeks`;
  else if (hours < 24 * 365 * 2) text = `${Math.floor(hours / 24 / 30)} months`;
  else text = `${Math.floor(hours / 24 / 365)} years`;
  return `${text} ago`;
}
