// Process identity `<boot-id>/<pid>/<start-ticks>`: names a process uniquely across pid reuse and reboots,
// so a lock or lease left by a crashed process can be told apart from one held by a live process.
import { readFileSync } from 'node:fs';

export interface OwnerIdentity {
  bootId: string;
  pid: number;
  startTicks: string;
}

let cachedBootId: string | undefined;
let cachedOwner: string | undefined;

/** The kernel's boot id; changes on every reboot, so owners from before a reboot are all dead. */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = 'unknown-boot';
    }
  }
  return cachedBootId;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined if no such process. */
export function processStartTicks(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (comm) is parenthesised and may contain spaces or ')', so split after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state), so field 22 is rest[19].
  return rest[19];
}

export function formatOwner(id: OwnerIdentity): string {
  return `${id.bootId}/${id.pid}/${id.startTicks}`;
}

export function parseOwner(owner: string): OwnerIdentity | undefined {
  const parts = owner.split('/');
  if (parts.length !== 3) return undefined;
  const [boot, pidText, startTicks] = parts as [string, string, string];
  if (!/^[0-9]+$/.test(pidText) || boot === '' || startTicks === '') return undefined;
  return { bootId: boot, pid: Number(pidText), startTicks };
}

/** This process's identity. */
export function currentOwner(): string {
  if (cachedOwner === undefined) {
    cachedOwner = formatOwner({
      bootId: bootId(),
      pid: process.pid,
      startTicks: processStartTicks(process.pid) ?? '0',
    });
  }
  return cachedOwner;
}

/** True when the owner runs now: same boot, and its pid exists with the same start time. */
export function isOwnerAlive(owner: string): boolean {
  const id = parseOwner(owner);
  if (!id) return false;
  if (id.bootId !== bootId()) return false;
  const ticks = processStartTicks(id.pid);
  if (ticks !== undefined) return ticks === id.startTicks;
  if (bootId() !== 'unknown-boot') return false;
  // No /proc (not Linux): fall back to "a process with that pid exists".
  try {
    process.kill(id.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `pid 1234` for messages; the raw string when it does not parse. */
export function describeOwner(owner: string): string {
  const id = parseOwner(owner);
  return id ? `pid ${id.pid}` : owner;
}
