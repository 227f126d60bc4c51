// One CLI invocation's resolved settings and lazily opened store. Commands ask for what they need;
// nothing is opened for `--help` or for commands that do not touch the store.
import type { Command } from 'commander';
import type { Backend } from '../api/backend.ts';
import { openEmbedded } from '../client/embedded.ts';
import { type HoistConfig, loadConfig } from '../config/config.ts';
import { type Context, isIdentifier } from '../core/context.ts';
import { invalidArgument } from '../core/errors.ts';
import { setUnpackConcurrency } from '../diff/unpack-concurrency.ts';
import { interruptSignal } from './interrupt.ts';

export interface Session {
  config: HoistConfig;
  ctx: Context;
  backend(): Promise<Backend>;
}

let current: { backend?: Promise<Backend> } | undefined;

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
  };
  const isRoot = process.getuid?.() === 0;
  const config = loadConfig({ path: g.config, env: process.env, isRoot });
  if (g.root) config.root = g.root;
  setUnpackConcurrency(config.max_concurrent_unpacks);
  const namespace = g.namespace ?? process.env.HOIST_NAMESPACE ?? config.namespace;
  if (!isIdentifier(namespace))
    throw invalidArgument(
      `invalid namespace ${JSON.stringify(namespace)}: use letters, digits, and . _ - between them`,
    );
  current ??= {};
  const state = current;
  return {
    config,
    // Every long command (pull, push, save, load, convert, unpack, commit) stops cleanly on Ctrl-C.
    ctx: cmd.name() === 'serve' ? { namespace } : { namespace, signal: interruptSignal() },
    backend() {
      // `serve` has its own --address (where to listen); only the global one picks a daemon to talk to.
      state.backend ??= (async (): Promise<Backend> => {
        if (cmd.name() === 'serve') return openEmbedded(config.root);
        // An explicit daemon, else the live `hoist serve` that owns this store, else the store itself.
        const address =
          g.address ??
          process.env.HOIST_ADDRESS ??
          (await import('../server/daemon-marker.ts').then((m) => m.liveDaemon(config.root)));
        return address
          ? import('../client/grpc/backend.ts').then((m) => m.openGrpc(address))
          : openEmbedded(config.root);
      })();
      return state.backend as Promise<Backend>;
    },
  };
}

export async function closeSession(): Promise<void> {
  const s = current;
  current = undefined;
  if (s?.backend) await (await s.backend.catch(() => undefined))?.close();
}
