// Lines for stderr that must not tear the terminal progress: while a live region is drawn there, a line
// written straight to stderr would land inside it and be overwritten or duplicated by the next redraw, so
// the progress display takes these lines over (printed above the region) until it is done.

type LineSink = (line: string) => void;

const direct: LineSink = (line) => {
  process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
};

let sink: LineSink = direct;

/** Write a line to stderr, or above the progress display while one is drawn. */
export function writeStderrLine(line: string): void {
  sink(line);
}

/** Route stderr lines to `to` (the progress display's log) until the returned function is called. */
export function divertStderrLines(to: LineSink): () => void {
  sink = to;
  return () => {
    if (sink === to) sink = direct;
  };
}
