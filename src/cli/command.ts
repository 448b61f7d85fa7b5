// What every CLI command shares: its flags (node:util parseArgs options, each with the text
// its --help prints, so the help cannot drift from what is parsed), its help page, and where
// it writes. Commands write through `Io`, so tests run them in-process.
import { parseArgs, type ParseArgsOptionDescriptor } from 'node:util';
import { configPath } from '../app.ts';
import { ConfigError, loadConfigFile, type Config } from '../config/load.ts';

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** 0 done; 1 a problem (an invalid config, a failed dry run); 2 a usage error; 3 `rbac` printed, with gaps. */
export const EXIT = { ok: 0, problem: 1, usage: 2, incomplete: 3 } as const;

export interface Flag extends ParseArgsOptionDescriptor {
  description: string;
  /** The value's name in the help (`--config FILE`); a string flag without one shows VALUE. */
  value?: string;
}

export interface Command {
  name: string;
  /** After `gke-deployer <name>`: flags and arguments, as the usage line shows them. */
  usage: string;
  summary: string;
  /** Paragraphs of the help page. */
  description: string[];
  flags: Record<string, Flag>;
  examples: string[];
  run(args: Parsed, io: Io): number | Promise<number>;
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export const HELP_FLAG: Record<string, Flag> = { help: { type: 'boolean', short: 'h', description: 'Show this help.' } };

export const CONFIG_FLAG: Record<string, Flag> = {
  config: { type: 'string', short: 'c', value: 'FILE', description: 'The configuration (default: $DEPLOYER_CONFIG, else ./deployer.yaml).' },
};

/** parseArgs with the command's flags; throws parseArgs' own TypeError on an unknown flag or a missing value. */
export function parse(command: Command, argv: string[]): Parsed {
  const options = Object.fromEntries(Object.entries(command.flags).map(([name, { description: _d, value: _v, ...option }]) => [name, option]));
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  return { values: values as Parsed['values'], positionals };
}

/** The command's help page: usage line, description, flags, examples. */
export function helpPage(command: Command): string {
  const flags = Object.entries(command.flags).map(([name, f]) => {
    const short = f.short ? `-${f.short}, ` : '    ';
    return [`${short}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`, f.description] as const;
  });
  return [
    `Usage: gke-deployer ${command.name} ${command.usage}`,
    '',
    ...command.description.flatMap((p) => [p, '']),
    'Flags:',
    ...table(flags),
    '',
    'Examples:',
    ...command.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

/** Two columns, the first padded to its widest cell. */
export function table(rows: readonly (readonly [string, string])[], indent = '  '): string[] {
  const width = Math.max(0, ...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(width)}  ${b}`.trimEnd());
}

/** The config a command reads: its --config (or argument), else what start-up reads. */
export function configFile(given: string | boolean | undefined, io: Io): string {
  return typeof given === 'string' ? given : configPath(io.env);
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** The config for a command its secrets play no part in (plan, rbac); undefined once its problems are printed. */
export function configWithoutSecrets(file: string, io: Io): Config | undefined {
  try {
    return loadConfigFile(file, io.env, { missingSecret: () => {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr(`${err.message}\n`);
    return undefined;
  }
}
