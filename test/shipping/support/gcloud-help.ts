// The flags of gcloud commands, read from the real CLI's `--help` text (captured into
// test/shipping/fixtures/gcloud-help/ by its capture.sh), and a check of one command line
// against them: the gcloud stub and the docs test both use it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const HELP_DIR = path.resolve(import.meta.dirname, '../fixtures/gcloud-help');

export interface Flag {
  /** `--name=VALUE` in the help; otherwise a boolean switch. */
  takesValue: boolean;
}

/** gcloud-wide flags (listed, not described, in every command's help) that take no value. */
const WIDE_SWITCHES = new Set(['help', 'log-http', 'quiet', 'user-output-enabled']);

/**
 * A flag definition: a line of a *FLAGS (or POSITIONAL ARGUMENTS) section that holds only the flag, its value and its
 * aliases, e.g. `--location=LOCATION, -l LOCATION`, `--[no-]pap, --[no-]public-access-prevention`,
 * `--http-method=HTTP_METHOD; default="post"`. Description lines never have this shape.
 */
const LONG = /^--(\[no-\])?([a-z0-9][a-z0-9-]*)(=\S+)?$/;
const SHORT = /^-[a-zA-Z]( \S+)?$/;

function definition(line: string): { name: string; negatable: boolean; takesValue: boolean }[] | undefined {
  const body = line.trim().replace(/; default=.*$/, '');
  if (!body.startsWith('--')) return undefined;
  const parts = body.split(', ');
  if (!parts.every((p) => LONG.test(p) || SHORT.test(p))) return undefined;
  return parts.flatMap((p) => {
    const m = LONG.exec(p);
    return m ? [{ name: m[2]!, negatable: m[1] !== undefined, takesValue: m[3] !== undefined }] : [];
  });
}

export function parseHelp(text: string): Map<string, Flag> {
  const flags = new Map<string, Flag>();
  let section = '';
  for (const line of text.split('\n')) {
    if (/^[A-Z][A-Z ]+$/.test(line)) {
      section = line.trim();
      continue;
    }
    if (section === 'GCLOUD WIDE FLAGS') {
      for (const m of line.matchAll(/--([a-z][a-z0-9-]*)/g)) flags.set(m[1]!, { takesValue: !WIDE_SWITCHES.has(m[1]!) });
      continue;
    }
    // Resource arguments define their attribute flags (--location, --region…) under POSITIONAL ARGUMENTS.
    if (!section.endsWith('FLAGS') && section !== 'POSITIONAL ARGUMENTS') continue;
    for (const d of definition(line) ?? []) {
      flags.set(d.name, { takesValue: d.takesValue });
      // `--[no-]x` is a switch with both spellings.
      if (d.negatable) flags.set(`no-${d.name}`, { takesValue: false });
    }
  }
  // A switch whose help mentions `--no-x` ("Use --no-x to disable this flag") takes that too.
  for (const [name, flag] of [...flags]) {
    if (!flag.takesValue && text.includes(`--no-${name}`)) flags.set(`no-${name}`, { takesValue: false });
  }
  return flags;
}

export interface KnownCommand {
  words: string[];
  flags: Map<string, Flag>;
}

let commands: KnownCommand[] | undefined;

/** Every captured command, longest first (so `scheduler jobs create http` beats a shorter match). */
export function knownCommands(): KnownCommand[] {
  if (commands) return commands;
  if (!existsSync(HELP_DIR)) throw new Error(`no captured gcloud help in ${HELP_DIR}`);
  commands = readdirSync(HELP_DIR)
    .filter((f) => f.endsWith('.txt'))
    .map((f) => ({ words: f.slice(0, -'.txt'.length).split('_'), flags: parseHelp(readFileSync(path.join(HELP_DIR, f), 'utf8')) }))
    .sort((a, b) => b.words.length - a.words.length);
  return commands;
}

export interface Call {
  /** The command's words, e.g. ['pubsub', 'subscriptions', 'create']. */
  command: string[];
  positionals: string[];
  /** Flag name (without dashes) → value; `true` for a switch. */
  flags: Record<string, string | true>;
}

/** Parses gcloud's arguments as gcloud does; throws on a command or flag the real CLI does not know. */
export function checkCall(args: string[]): Call {
  const words = args.filter((a) => !a.startsWith('-'));
  const known = knownCommands().find((c) => c.words.every((w, i) => words[i] === w));
  if (!known) {
    throw new Error(`unknown command "gcloud ${words.slice(0, 4).join(' ')}": not captured (run test/shipping/fixtures/gcloud-help/capture.sh)`);
  }
  const rest = [...args];
  for (const w of known.words) rest.splice(rest.indexOf(w), 1);
  const positionals: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = known.flags.get(name);
    const where = `gcloud ${known.words.join(' ')}`;
    if (!flag) throw new Error(`${where}: unrecognized arguments: --${name} (not in the installed CLI's help)`);
    if (!flag.takesValue) {
      if (eq >= 0) throw new Error(`${where}: --${name} is a switch and takes no value`);
      flags[name] = true;
      continue;
    }
    if (eq >= 0) {
      flags[name] = arg.slice(eq + 1);
      continue;
    }
    const value = rest[i + 1];
    if (value === undefined) throw new Error(`${where}: --${name} expects a value`);
    flags[name] = value;
    i++;
  }
  return { command: known.words, positionals, flags };
}

/** The arguments of every `gcloud …` command in `text`, split as a shell would (quotes kept together). */
export function gcloudCommands(text: string): string[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const commands: string[][] = [];
  for (const m of joined.matchAll(/\bgcloud (?=[a-z])/g)) {
    const args: string[] = [];
    let word = '';
    let quote: string | undefined;
    let i = m.index + m[0].length;
    for (; i < joined.length; i++) {
      const c = joined[i]!;
      if (quote) {
        if (c === quote) quote = undefined;
        else word += c;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        continue;
      }
      // The command ends where the shell (or the Markdown around it) ends it.
      if (/[\n`)|;#<>]/.test(c) || (c === '&' && joined[i + 1] === '&')) break;
      if (c === ' ') {
        if (word) args.push(word);
        word = '';
        continue;
      }
      word += c;
    }
    if (word) args.push(word);
    commands.push(args);
  }
  return commands;
}
