// One CLI invocation's settings and its lazily opened store: a `Hoist` (the public library), so every
// command is a thin layer over the same calls a program makes. Nothing is opened for `--help` or for
// commands that do not touch the store.
import type { Command } from 'commander';
import { type HoistConfig, loadConfig } from '../config/config.ts';
import type { Logger } from '../core/log.ts';
import type { Hoist } from '../hoist/hoist.ts';
import { interruptSignal } from './interrupt.ts';
import { cliLogger } from './log-flags.ts';

export interface Session {
  config: HoistConfig;
  /** Aborted by the first Ctrl-C or SIGTERM: long commands stop cleanly (exit 130) and stay resumable. */
  signal: AbortSignal | undefined;
  /** `--log-level` / `--debug`: logfmt lines on stderr. */
  log: Logger;
  hoist(): Promise<Hoist>;
}

let current: Promise<Hoist> | undefined;

function rootCommand(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

export function session(cmd: Command): Session {
  const g = rootCommand(cmd).opts() as {
    root?: string;
    config?: string;
    namespace?: string;
    address?: string;
    debug?: boolean;
    logLevel?: string;
    logFormat?: string;
  };
  const log = cliLogger(g);
  const config = loadConfig({ path: g.config, env: process.env, isRoot: process.getuid?.() === 0 });
  if (g.root) config.root = g.root;
  return {
    config,
    log,
    // A getter: `serve` never asks, so its own graceful stop keeps the signals.
    get signal() {
      return interruptSignal();
    },
    hoist() {
      current ??= (async () => {
        const { Hoist } = await import('../hoist/hoist.ts');
        const opts = { config, log, ...(g.namespace ? { namespace: g.namespace } : {}) };
        // An explicit daemon (--address, HOIST_ADDRESS, then containerd's CONTAINERD_ADDRESS as ctr and
        // nerdctl read it), else the node's containerd (config `containerd_address`), else the live
        // `hoist serve` that owns this store, else the store itself.
        const env = process.env;
        const address =
          g.address ?? (env.HOIST_ADDRESS || env.CONTAINERD_ADDRESS || config.containerd_address);
        return address ? Hoist.connect(address, opts) : Hoist.open(opts);
      })();
      return current;
    },
  };
}

export async function closeSession(): Promise<void> {
  const s = current;
  current = undefined;
  if (s) await (await s.catch(() => undefined))?.close();
}
