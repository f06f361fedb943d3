// Slurm hostlist expressions, pure and dependency-free so that compute nodes without scontrol
// can still expand SLURM_JOB_NODELIST. Semantics follow `scontrol show hostnames` for every list
// Slurm writes: the width of a range is the width of its lower bound (`[08-10]` -> 08 09 10,
// `[8-10]` -> 8 9 10), two bracket groups expand as a cartesian product with the left group
// varying slowest, and order and duplicates are kept. Beyond that we are more lenient than
// scontrol: text after a bracket group (`n[1-3]-ib`) is accepted, and three or more groups expand
// left-slowest (scontrol's order for those is irregular, and Slurm never writes them).

const MAX_HOSTS = 1 << 20;

export class HostlistError extends Error {
  constructor(expression: string, reason: string) {
    super(`invalid hostlist "${expression}": ${reason}`);
    this.name = 'HostlistError';
  }
}

/** "nid[00001-00003,00010],login1" -> ["nid00001", "nid00002", "nid00003", "nid00010", "login1"] */
export function expandHostlist(expression: string): string[] {
  const hosts: string[] = [];
  for (const item of splitTopLevel(expression)) {
    for (const host of expandItem(item, expression)) {
      hosts.push(host);
      if (hosts.length > MAX_HOSTS) throw new HostlistError(expression, `expands to more than ${MAX_HOSTS} hosts`);
    }
  }
  return hosts;
}

/** "3(x2),2,1" -> [3, 3, 2, 1], the form of SLURM_STEP_TASKS_PER_NODE and SLURM_TASKS_PER_NODE. */
export function expandTasksPerNode(expression: string): number[] {
  const counts: number[] = [];
  for (const part of expression.split(',')) {
    const match = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (!match) throw new HostlistError(expression, `"${part}" is not N or N(xM)`);
    const repeat = match[2] === undefined ? 1 : Number(match[2]);
    if (repeat < 1 || repeat > MAX_HOSTS) throw new HostlistError(expression, `bad repeat count in "${part}"`);
    for (let i = 0; i < repeat; i++) counts.push(Number(match[1]));
  }
  return counts;
}

/**
 * The inverse of expandHostlist for an ordered list: runs of neighbours that share a prefix
 * become one bracket group. expandHostlist(compressHostlist(xs)) equals xs for any list of
 * names without brackets, commas or whitespace.
 */
export function compressHostlist(hosts: readonly string[]): string {
  const items: string[] = [];
  let run: { prefix: string; width: number; numbers: number[]; last: string } | undefined;
  const flush = (): void => {
    if (!run) return;
    items.push(run.numbers.length === 1 ? run.last : `${run.prefix}[${formatRanges(run.numbers, run.width)}]`);
    run = undefined;
  };
  for (const host of hosts) {
    if (/[\s,[\]]/.test(host) || host === '') throw new HostlistError(host, 'a host name cannot be empty or contain brackets, commas or spaces');
    const match = /^(.*?)(\d+)$/.exec(host);
    if (!match) {
      flush();
      items.push(host);
      continue;
    }
    const [, prefix, digits] = match as unknown as [string, string, string];
    const n = Number(digits);
    const fits = run !== undefined && run.prefix === prefix && n > run.numbers[run.numbers.length - 1]!
      && Number.isSafeInteger(n) && String(n).padStart(run.width, '0') === digits;
    if (fits) {
      run!.numbers.push(n);
      run!.last = host;
    } else {
      flush();
      run = Number.isSafeInteger(n) ? { prefix, width: digits.length, numbers: [n], last: host } : undefined;
      if (!run) items.push(host);
    }
  }
  flush();
  return items.join(',');
}

function formatRanges(numbers: number[], width: number): string {
  const parts: string[] = [];
  let start = 0;
  for (let i = 1; i <= numbers.length; i++) {
    if (i < numbers.length && numbers[i] === numbers[i - 1]! + 1) continue;
    const lo = String(numbers[start]).padStart(width, '0');
    parts.push(i - 1 === start ? lo : `${lo}-${String(numbers[i - 1]).padStart(width, '0')}`);
    start = i;
  }
  return parts.join(',');
}

/** Split on commas and whitespace that are outside brackets. */
function splitTopLevel(expression: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of expression) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0) throw new HostlistError(expression, 'unbalanced "]"');
    if (depth === 0 && (ch === ',' || /\s/.test(ch))) {
      if (current !== '') items.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (depth !== 0) throw new HostlistError(expression, 'unbalanced "["');
  if (current !== '') items.push(current);
  return items;
}

function expandItem(item: string, expression: string): string[] {
  const open = item.indexOf('[');
  if (open < 0) return [item];
  const close = item.indexOf(']', open);
  if (close < 0) throw new HostlistError(expression, `unbalanced "[" in "${item}"`);
  const prefix = item.slice(0, open);
  const values = expandRanges(item.slice(open + 1, close), expression);
  const suffixes = expandItem(item.slice(close + 1), expression);
  if (values.length * suffixes.length > MAX_HOSTS) throw new HostlistError(expression, `expands to more than ${MAX_HOSTS} hosts`);
  const hosts: string[] = [];
  for (const value of values) for (const suffix of suffixes) hosts.push(prefix + value + suffix);
  return hosts;
}

function expandRanges(body: string, expression: string): string[] {
  const values: string[] = [];
  for (const part of body.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) throw new HostlistError(expression, `"[${body}]" must hold numbers and ranges like 01-04`);
    const lo = match[1]!;
    const hi = match[2] ?? lo;
    const from = Number(lo);
    const to = Number(hi);
    if (to < from) throw new HostlistError(expression, `range ${lo}-${hi} runs backwards`);
    if (to - from > MAX_HOSTS) throw new HostlistError(expression, `range ${lo}-${hi} is too large`);
    for (let n = from; n <= to; n++) values.push(String(n).padStart(lo.length, '0'));
  }
  return values;
}
