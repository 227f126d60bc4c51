// Ctrl-C and SIGTERM for every command but `serve` (which stops gracefully on its own): the first signal
// aborts the command's context (it stops, keeps what is resumable, cleans up, and exits 130); a second one
// exits at once with 130. Installed once per process, when a command first asks for its context.
import { HoistError } from '../core/errors.ts';

let controller: AbortController | undefined;

export function interruptSignal(): AbortSignal {
  if (controller) return controller.signal;
  const abort = new AbortController();
  controller = abort;
  let received = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++received > 1) process.exit(130);
    abort.abort(new HoistError('HOIST_CANCELLED', `received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return abort.signal;
}
