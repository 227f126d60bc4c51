// The man pages (run by scripts/build.sh at pack time): hoist(1) and one page per command, from the
// commander definitions (src/cli/man/man-pages.ts), into man/man1/. Build output, not committed
// (.gitignore): the commands are the source.
//
// npm links a global package's man pages into {prefix}/share/man/man1 only from package.json's `man`
// list of files (`directories.man` is not expanded at install), so that list must name every page: the
// build fails when it does not, and `--update-package-json` rewrites it.
//   node_modules/.bin/node scripts/gen-man.ts [--update-package-json] [out-dir]     default man/man1
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { manPages } from '../src/cli/man/man-pages.ts';
import { buildProgram } from '../src/cli/program.ts';

const REPO = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const update = args.includes('--update-package-json');
const out = args.find((a) => !a.startsWith('--')) ?? join(REPO, 'man', 'man1');
const pkgPath = join(REPO, 'package.json');
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string; man?: string[] };
// SOURCE_DATE_EPOCH (reproducible builds) when set, else today.
const epoch = process.env.SOURCE_DATE_EPOCH;
const date = (epoch ? new Date(Number(epoch) * 1000) : new Date()).toISOString().slice(0, 10);

const pages = manPages(await buildProgram(), { version: pkg.version, date });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const p of pages) writeFileSync(join(out, `${p.name}.1`), p.roff);
process.stdout.write(`gen-man: ${pages.length} pages in ${relative(REPO, out) || out}\n`);

const listed = pages.map((p) => `man/man1/${p.name}.1`).sort();
if (JSON.stringify(pkg.man ?? []) !== JSON.stringify(listed)) {
  if (update) {
    pkg.man = listed;
    writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
    process.stdout.write('gen-man: package.json "man" updated\n');
  } else {
    process.stderr.write(
      'gen-man: package.json "man" does not list exactly the generated pages (npm would not install them all);\n' +
        'run: node_modules/.bin/node scripts/gen-man.ts --update-package-json\n',
    );
    process.exit(1);
  }
}
