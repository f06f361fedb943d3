// `hpctrain doctor`: what this node can run, and for what it cannot, why and what to do.
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { readGpus } from '../backend/gpus.js';
import { canTrain, probeBackends } from '../backend/select.js';
import { detectEnv } from '../env/detect.js';
import type { OptionValues } from '../options.js';
import type { Command, CommandContext } from './types.js';

const PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'zeromq', 'sharp'];

export const doctorCommand: Command = {
  spec: {
    name: 'doctor',
    usage: 'hpctrain doctor [--json]',
    summary:
      'Check this node: Node.js and package versions, the GPUs visible, the scheduler detected, and\n' +
      'which TensorFlow.js backends load and work; for each that does not, the reason and the fix.\n' +
      'Exits non-zero when no backend can train (the pure-JS cpu backend alone is too slow to).',
    options: [{ name: 'json', type: 'boolean', describe: 'print the findings as JSON' }],
  },
  async run(values: OptionValues, _positionals: string[], context: CommandContext): Promise<number> {
    const require = createRequire(import.meta.url);
    const packages = Object.fromEntries(PACKAGES.map((name) => {
      try {
        return [name, (require(`${name}/package.json`) as { version: string }).version];
      } catch {
        return [name, null];
      }
    }));
    const { gpus, source } = await readGpus();
    let scheduler: string;
    try {
      const job = detectEnv(context.env);
      scheduler = `${job.scheduler} (launcher ${job.launcher}, job ${job.jobId}, rank ${job.rank} of ${job.size})`;
    } catch (error) {
      scheduler = `none usable: ${(error as Error).message}`;
    }
    const backends = await probeBackends(gpus.length);
    const trainable = backends.filter((b) => b.ok && canTrain(b.name)).map((b) => b.name);
    const report = {
      node: process.version, platform: `${process.platform} ${process.arch}`, cpus: cpus().length,
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10, packages, gpus, gpuSource: source, scheduler, backends, trainable,
    };
    if (values.json) {
      context.stdout(JSON.stringify(report, null, 2) + '\n');
    } else {
      const lines = [
        `Node.js     ${report.node} on ${report.platform}, ${report.cpus} CPUs, ${report.memoryGiB} GiB`,
        ...Object.entries(packages).map(([name, version]) => `package     ${name} ${version ?? 'not installed'}`),
        gpus.length ? gpus.map((g) => `GPU         ${g.index}: ${g.name}${g.memoryMiB ? `, ${g.memoryMiB} MiB` : ''} (from ${source})`).join('\n') : 'GPU         none visible',
        `scheduler   ${scheduler}`,
        ...backends.flatMap((b) => [
          `backend     ${b.name.padEnd(14)} ${b.ok ? 'ok' : 'NO'}  ${b.reason}`,
          ...(b.fix ? [`            ${''.padEnd(14)}     fix: ${b.fix}`] : []),
        ]),
        trainable.length ? `can train   with ${trainable.join(', ')} (auto picks ${trainable[0]})` : 'can train   NO: only the pure-JS cpu backend works, far too slow for Inception-V3',
      ];
      context.stdout(lines.join('\n') + '\n');
    }
    return trainable.length > 0 ? 0 : 1;
  },
};
