// Options are declared once per command: the same table drives parsing, environment fallbacks
// (HPCTRAIN_* set by `sbatch --export` or `qsub -v`), validation and the --help text, so the help
// cannot drift from what the parser accepts. Precedence: flag, then environment, then default.
import minimist from 'minimist';
import { OptionsError } from './errors.js';
import type { Env } from './env/types.js';

export interface OptionSpec {
  name: string;
  alias?: string;
  type: 'string' | 'integer' | 'number' | 'boolean';
  /** HPCTRAIN_* variable that supplies the value when the flag is absent. */
  env?: string;
  default?: string | number | boolean;
  /** Shown in --help when the default is computed rather than fixed. */
  defaultText?: string;
  choices?: readonly string[];
  min?: number;
  max?: number;
  valueName?: string;
  describe: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  options: readonly OptionSpec[];
  /** Stop at the first positional: everything after belongs to another command (launch). */
  stopEarly?: boolean;
  details?: string;
}

export type OptionValues = Readonly<Record<string, string | number | boolean | undefined>>;

export interface ParsedArgs {
  values: OptionValues;
  positionals: string[];
}

export const HELP_OPTION: OptionSpec = { name: 'help', alias: 'h', type: 'boolean', describe: 'show this help and exit' };

export function parseCommandArgs(command: CommandSpec, argv: readonly string[], env: Env): ParsedArgs {
  const specs = [...command.options, HELP_OPTION];
  const known = new Set(specs.flatMap((s) => [s.name, ...(s.alias ? [s.alias] : [])]));
  const parsed = minimist([...argv], {
    string: specs.filter((s) => s.type !== 'boolean').map((s) => s.name),
    boolean: specs.filter((s) => s.type === 'boolean').map((s) => s.name),
    alias: Object.fromEntries(specs.filter((s) => s.alias).map((s) => [s.name, s.alias!])),
    stopEarly: command.stopEarly ?? false,
    '--': true,
    unknown: (arg) => {
      if (!arg.startsWith('-')) return true;
      const name = arg.replace(/^-+/, '').split('=')[0]!;
      if (known.has(name)) return true;
      throw new OptionsError(`unknown option "${arg}" for hpctrain ${command.name}`, `see hpctrain ${command.name} --help`);
    },
  });
  const values: Record<string, string | number | boolean | undefined> = {};
  for (const spec of specs) {
    const fromFlag = parsed[spec.name] as unknown;
    if (Array.isArray(fromFlag)) throw new OptionsError(`--${spec.name} was given ${fromFlag.length} times`);
    const flagGiven = spec.type === 'boolean' ? argv.some((a) => isFlag(a, spec)) : fromFlag !== undefined;
    const fromEnv = spec.env ? env[spec.env] : undefined;
    if (flagGiven) values[spec.name] = normalizeValue(spec, fromFlag, `--${spec.name}`);
    else if (fromEnv !== undefined && fromEnv !== '') values[spec.name] = normalizeValue(spec, fromEnv, spec.env!);
    else values[spec.name] = spec.default;
  }
  const positionals = [...(parsed._ as string[]).map(String), ...((parsed['--'] as string[] | undefined) ?? [])];
  return { values: Object.freeze(values), positionals };
}

function isFlag(arg: string, spec: OptionSpec): boolean {
  return arg === `--${spec.name}` || arg === `--no-${spec.name}` || (spec.alias !== undefined && arg === `-${spec.alias}`);
}

function normalizeValue(spec: OptionSpec, raw: unknown, source: string): string | number | boolean {
  if (spec.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes)$/i.test(String(raw))) return true;
    if (/^(0|false|no)$/i.test(String(raw))) return false;
    throw new OptionsError(`${source}="${String(raw)}" is not true or false`);
  }
  const text = String(raw);
  if (text === '') throw new OptionsError(`${source} needs a value (${spec.valueName ?? spec.type})`);
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new OptionsError(`${source}="${text}" is not one of ${spec.choices.join(', ')}`);
    }
    return text;
  }
  const value = Number(text);
  const integer = spec.type === 'integer';
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || !/^\s*[-+]?[\d.]+(e[-+]?\d+)?\s*$/i.test(text)) {
    throw new OptionsError(`${source}="${text}" is not ${integer ? 'an integer' : 'a number'}`);
  }
  if (spec.min !== undefined && value < spec.min) throw new OptionsError(`${source}=${text} is below the minimum ${spec.min}`);
  if (spec.max !== undefined && value > spec.max) throw new OptionsError(`${source}=${text} is above the maximum ${spec.max}`);
  return value;
}

const HELP_COLUMNS = 100;

function wrapWords(text: string, columns: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > columns) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return [...lines, line];
}

export function formatHelp(command: CommandSpec): string {
  const rows = [...command.options, HELP_OPTION].map((spec) => {
    const flag = `${spec.alias ? `-${spec.alias}, ` : '    '}--${spec.name}${spec.type === 'boolean' ? '' : ` ${spec.valueName ?? spec.type.toUpperCase()}`}`;
    const notes: string[] = [];
    if (spec.choices) notes.push(`one of ${spec.choices.join('|')}`);
    const shownDefault = spec.defaultText ?? (spec.default !== undefined && spec.type !== 'boolean' ? String(spec.default) : undefined);
    if (shownDefault !== undefined) notes.push(`default ${shownDefault}`);
    if (spec.env) notes.push(`env ${spec.env}`);
    return [flag, spec.describe + (notes.length ? ` (${notes.join('; ')})` : '')];
  });
  const width = Math.max(...rows.map(([flag]) => flag!.length)) + 2;
  const lines = [`Usage: ${command.usage}`, '', command.summary, '', 'Options:'];
  for (const [flag, text] of rows) {
    wrapWords(text!, HELP_COLUMNS - 2 - width).forEach((part, i) => lines.push(`  ${(i === 0 ? flag! : '').padEnd(width)}${part}`));
  }
  if (command.details) lines.push('', command.details);
  return lines.join('\n') + '\n';
}
