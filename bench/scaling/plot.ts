// The scaling study's plots, from collect's CSV: images/s against nodes with the ideal line,
// efficiency against nodes, and the step time split into data, compute and comm, for each
// strategy. Vega-Lite specs rendered to SVG by Vega in Node (no browser), and to PNG by sharp.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { BenchError, runBenchIfMain } from '../figures.js';
import { parseStudyArgs } from './study-args.js';
import { readStudyCsv, type StudyRow } from './table.js';

/** A Vega-Lite spec as JSON (checked by Vega-Lite's compiler when rendered). */
export type PlotSpec = Record<string, unknown>;

const HELP = `Usage: node dist/bench/scaling/plot.js --out DIR [--csv PATH]

Draws the scaling study of collect's CSV as SVG and PNG files in DIR:
  throughput.svg/.png   images/s against nodes for each strategy, with standard-error bars and
                        the ideal line (N x the one-node allreduce run)
  efficiency.svg/.png   scaling efficiency against nodes for each strategy
  breakdown.svg/.png    the median step time split into data, compute and comm (stacked bars),
                        a panel per strategy
and prints one line per file. The titles give the job's parameters (model, image size, batch,
weak or strong scaling, backend, how the jobs ran).

Options:
  --out DIR      the study's folder, where the files go       [bench/results/scaling]
  --csv PATH     collect's CSV                                [DIR/scaling.csv]
  -h, --help     this text
`;

async function main(argv: string[]): Promise<number> {
  const parsed = parseStudyArgs(argv, HELP);
  if (!parsed) return 0;
  const { out, csv } = parsed;
  const rows = readStudyCsv(csv).filter((r) => r.kind === 'study' && r.state === 'ok');
  if (rows.length === 0) throw new BenchError('the CSV has no finished node count to plot; see collect\'s lines for why the jobs failed');
  mkdirSync(out, { recursive: true });
  for (const [name, spec] of Object.entries(studySpecs(rows))) {
    const svg = await renderSvg(spec);
    writeFileSync(join(out, `${name}.svg`), svg);
    const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
    writeFileSync(join(out, `${name}.png`), png);
    console.log(`plot file=${join(out, `${name}.svg`)} png=${join(out, `${name}.png`)} bytes=${svg.length} png_bytes=${png.length}`);
  }
  return 0;
}

export async function renderSvg(spec: PlotSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The three plots' specs, titled with the study's parameters. */
export function studySpecs(rows: StudyRow[]): Record<'throughput' | 'efficiency' | 'breakdown', PlotSpec> {
  const first = rows[0]!;
  const batch = first.scaling === 'strong' ? `global batch ${first.globalBatch} (strong scaling)` : `batch ${first.batchSize} per worker (weak scaling)`;
  const subtitle = `Inception-V3 ${first.imageSize}x${first.imageSize}, ${batch}, ${first.backend || 'backend ?'}, via ${first.via}, ${first.timedSteps / Math.max(1, first.repeats)} timed steps per job`;
  const baseline = rows.find((r) => r.nodes === 1 && r.strategy === 'allreduce')?.imagesPerSecond;
  const nodes = [...new Set(rows.map((r) => r.nodes))].sort((a, b) => a - b);
  const values = rows.map((r) => ({
    nodes: r.nodes, strategy: r.strategy, imagesPerSecond: r.imagesPerSecond, low: r.imagesPerSecond! - r.imagesPerSecondSe!, high: r.imagesPerSecond! + r.imagesPerSecondSe!,
    efficiency: r.efficiency,
  }));
  const x = { field: 'nodes', type: 'quantitative', title: 'nodes', axis: { values: nodes, format: 'd' }, scale: { domain: [0, nodes.at(-1)! + 1] } };
  const common = { width: 420, height: 280, background: 'white', config: { font: 'DejaVu Sans' } };
  const throughput: PlotSpec = {
    ...common, title: { text: 'Throughput against nodes', subtitle: [subtitle, 'bars: standard error; dashed: ideal, N x the 1-node allreduce run'] },
    layer: [
      ...(baseline === undefined ? [] : [{
        data: { values: [{ nodes: 0, ideal: 0 }, { nodes: nodes.at(-1)!, ideal: baseline * nodes.at(-1)! }] },
        mark: { type: 'line', strokeDash: [6, 4], color: 'grey' },
        encoding: { x, y: { field: 'ideal', type: 'quantitative' } },
      } ]),
      { data: { values }, mark: { type: 'line', point: true }, encoding: { x, y: { field: 'imagesPerSecond', type: 'quantitative', title: 'images/s (whole job)' }, color: { field: 'strategy', type: 'nominal' } } },
      { data: { values }, mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { field: 'low', type: 'quantitative', title: 'images/s (whole job)' }, y2: { field: 'high' }, color: { field: 'strategy', type: 'nominal' } } },
    ],
  };
  const efficiency: PlotSpec = {
    ...common, title: { text: 'Scaling efficiency against nodes', subtitle: [subtitle, 'efficiency = images/s(N) / (N x images/s(1 node, allreduce))'] },
    layer: [
      { data: { values: [{ one: 1 }] }, mark: { type: 'rule', strokeDash: [6, 4], color: 'grey' }, encoding: { y: { field: 'one', type: 'quantitative' } } },
      { data: { values: values.filter((v) => v.efficiency !== undefined) }, mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'efficiency', type: 'quantitative', title: 'efficiency', axis: { format: '%' } }, color: { field: 'strategy', type: 'nominal' } } },
    ],
  };
  const parts = rows.flatMap((r) => (['data', 'compute', 'comm'] as const).map((part, order) => ({
    nodes: r.nodes, strategy: r.strategy, part, order, ms: r.stepMsMedian! * (part === 'data' ? r.dataShare! : part === 'compute' ? r.computeShare! : r.commShare!),
  })));
  const breakdown: PlotSpec = {
    ...common, width: 240, title: { text: 'Median step time: data, compute, comm', subtitle }, data: { values: parts },
    mark: 'bar',
    encoding: {
      column: { field: 'strategy', type: 'nominal', title: 'strategy' },
      x: { field: 'nodes', type: 'ordinal', title: 'nodes' },
      y: { field: 'ms', type: 'quantitative', title: 'ms per step', stack: 'zero' },
      color: { field: 'part', type: 'nominal', title: 'part', sort: ['data', 'compute', 'comm'] },
      order: { field: 'order', type: 'quantitative' },
    },
  };
  return { throughput, efficiency, breakdown };
}

runBenchIfMain(import.meta.url, main);
