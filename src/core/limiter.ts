// A counting semaphore, e.g. at most `limit` blob downloads per resolver run at once (containerd's
// max_concurrent_downloads, default 3). A slot is held until the download stream ends or is destroyed.
import { HoistError } from './errors.ts';

export class Limiter {
  #limit: number;
  #active = 0;
  #queue: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  get active(): number {
    return this.#active;
  }

  /** Wait for a slot; resolves to a release function that is safe to call more than once. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new HoistError('HOIST_CANCELLED', 'operation cancelled');
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          const i = this.#queue.indexOf(wake);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(new HoistError('HOIST_CANCELLED', 'operation cancelled'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#queue.push(wake);
      });
    } else {
      this.#active++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter, so #active stays the same.
      if (next) next();
      else this.#active--;
    };
  }

  /** Run `fn` in a slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * Run `fn` over `items`, `limit` at a time. The first failure stops new work; the ones running are
 * waited for (none is left writing after this returns) and the first failure is what is thrown.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.err;
}
