// What Keras's model.summary() shows, as data (for --json and tests) and as the familiar table.
import type * as tfl from '@tensorflow/tfjs-layers';

export interface SummaryRow {
  name: string;
  /** Keras's class name: Conv2D, BatchNormalization, Concatenate, ... */
  type: string;
  /** Keras's notation, batch dimension first: "(None, 149, 149, 32)". */
  outputShape: string;
  params: number;
}

export interface ParamTotals {
  total: number;
  trainable: number;
  nonTrainable: number;
}

export interface ModelSummary {
  model: string;
  rows: SummaryRow[];
  totals: ParamTotals;
}

type Shape = (number | null)[];

function formatShape(shape: Shape | Shape[]): string {
  const one = (s: Shape) => `(${s.map((d) => (d === null ? 'None' : String(d))).join(', ')}${s.length === 1 ? ',' : ''})`;
  return Array.isArray(shape[0]) ? `[${(shape as Shape[]).map(one).join(', ')}]` : one(shape as Shape);
}

function countWeights(weights: readonly { shape: Shape }[]): number {
  return weights.reduce((sum, w) => sum + w.shape.reduce<number>((n, d) => n * (d ?? 1), 1), 0);
}

/** One row per layer in the model's (topological) order, and the parameter totals. */
export function summarizeModel(model: tfl.LayersModel): ModelSummary {
  const rows = model.layers.map((layer) => ({
    name: layer.name,
    type: layer.getClassName(),
    outputShape: formatShape(layer.outputShape as Shape | Shape[]),
    params: layer.countParams(),
  }));
  const trainable = countWeights(model.trainableWeights);
  const nonTrainable = countWeights(model.nonTrainableWeights);
  return { model: model.name, rows, totals: { total: trainable + nonTrainable, trainable, nonTrainable } };
}

/** 23851784 -> "23,851,784", the same whatever the locale. */
export function groupDigits(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The summary as Keras prints it: a ruled table, then total, trainable and non-trainable counts. */
export function formatSummary(summary: ModelSummary): string {
  const header = { layer: 'Layer (type)', shape: 'Output Shape', params: 'Param #' };
  const cells = summary.rows.map((row) => ({ layer: `${row.name} (${row.type})`, shape: row.outputShape, params: groupDigits(row.params) }));
  const layerWidth = Math.max(header.layer.length, ...cells.map((c) => c.layer.length)) + 2;
  const shapeWidth = Math.max(header.shape.length, ...cells.map((c) => c.shape.length)) + 2;
  const paramsWidth = Math.max(header.params.length, ...cells.map((c) => c.params.length));
  const line = (c: typeof header) => ` ${c.layer.padEnd(layerWidth)}${c.shape.padEnd(shapeWidth)}${c.params.padStart(paramsWidth)}`;
  const width = 1 + layerWidth + shapeWidth + paramsWidth;
  const { total, trainable, nonTrainable } = summary.totals;
  return [
    `Model: "${summary.model}"`,
    '_'.repeat(width),
    line(header),
    '='.repeat(width),
    ...cells.map(line),
    '='.repeat(width),
    `Total params: ${groupDigits(total)}`,
    `Trainable params: ${groupDigits(trainable)}`,
    `Non-trainable params: ${groupDigits(nonTrainable)}`,
    '_'.repeat(width),
  ].join('\n') + '\n';
}
