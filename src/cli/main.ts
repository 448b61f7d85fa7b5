// `gke-deployer <command>`: bin/gke-deployer.mjs calls run(). A command's flags are parsed
// by node:util parseArgs (src/cli/command.ts); this file only picks the command.
import { readFileSync } from 'node:fs';
import { checkCommand } from './check.ts';
import { EXIT, helpPage, parse, table, type Command, type Io } from './command.ts';
import { planCommand } from './plan.ts';
import { rbacCommand } from './rbac.ts';

export const COMMANDS: readonly Command[] = [checkCommand, rbacCommand, planCommand];

export function mainHelp(): string {
  return [
    'Usage: gke-deployer <command> [flags]',
    '',
    "gke-deployer's own tools, run from a clone (no build) or an installed package: check a deployer.yaml in CI, print the RBAC its targets need, plan a deploy against a cluster.",
    '',
    'Commands:',
    ...table(COMMANDS.map((c) => [c.name, c.summary] as const)),
    '',
    'Flags:',
    ...table([['-h, --help', 'Show this help.'], ['    --version', 'Print the version.']]),
    '',
    "Run 'gke-deployer <command> --help' for a command's flags and examples.",
    '',
  ].join('\n');
}

export function processIo(): Io {
  return { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t), env: process.env };
}

/** The exit status: see EXIT. */
export async function run(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help') {
    io[first === undefined ? 'stderr' : 'stdout'](mainHelp());
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.stdout(`gke-deployer ${pkg.version}\n`);
    return EXIT.ok;
  }
  // `gke-deployer help [command]`, as git and kubectl have it.
  const [name, args] = first === 'help' ? [rest[0], ['--help']] : [first, rest];
  if (name === undefined) {
    io.stdout(mainHelp());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`gke-deployer: unknown command "${name}"\nRun 'gke-deployer --help' for the commands.\n`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parse(command, args);
  } catch (err) {
    // parseArgs' own message: "Unknown option '--x'", "Option '-c, --config <value>' argument missing".
    io.stderr(`gke-deployer ${command.name}: ${(err as Error).message}\nRun 'gke-deployer ${command.name} --help' for usage.\n`);
    return EXIT.usage;
  }
  if (parsed.values.help === true) {
    io.stdout(helpPage(command));
    return EXIT.ok;
  }
  return command.run(parsed, io);
}
