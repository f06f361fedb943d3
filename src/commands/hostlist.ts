// `hpctrain hostlist EXPR`: what `scontrol show hostnames` prints, for nodes without scontrol.
import { expandHostlist, expandTasksPerNode, HostlistError } from '../env/hostlist.js';
import { OptionsError } from '../errors.js';
import type { OptionValues } from '../options.js';
import type { Command, CommandContext } from './types.js';

export const hostlistCommand: Command = {
  spec: {
    name: 'hostlist',
    usage: 'hpctrain hostlist [--tasks] EXPRESSION...',
    summary: 'Expand a Slurm hostlist ("nid[00001-00004,00010]") into one host per line, as\n`scontrol show hostnames` does.',
    options: [
      { name: 'tasks', type: 'boolean', describe: 'expand a task count list such as SLURM_TASKS_PER_NODE ("3(x2),1") instead' },
    ],
  },
  async run(values: OptionValues, positionals: string[], context: CommandContext): Promise<number> {
    if (positionals.length === 0) throw new OptionsError('hostlist needs an expression, e.g. hpctrain hostlist "nid[00001-00004]"');
    try {
      const expand = values.tasks ? (e: string) => expandTasksPerNode(e).map(String) : expandHostlist;
      const lines = positionals.flatMap((expression) => expand(expression));
      context.stdout(lines.length ? lines.join('\n') + '\n' : '');
    } catch (error) {
      if (error instanceof HostlistError) throw new OptionsError(error.message);
      throw error;
    }
    return 0;
  },
};
