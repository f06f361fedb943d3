// Moving weights between two builds of one network whose layers differ in class (hpctrain's
// training layers, tfjs-layers' standard ones): matched by layer name and weight name, never by
// position, so that a difference in order or in the set of weights is an error, not a silent shift.
import type * as tfl from '@tensorflow/tfjs-layers';

/** "conv2d_7/kernel" for conv2d_7's kernel, whatever name scope or uniquifying suffix its variable has. */
function weightKey(layer: tfl.layers.Layer, weight: tfl.LayerVariable): string {
  const parts = weight.originalName.split('/');
  return `${layer.name}/${parts[parts.length - 1]}`;
}

/**
 * to's weights <- copies of from's. Every weight of `to` needs a counterpart of the same shape
 * in `from`, and every weight of `from` one in `to`, except in the layers `leftOut` accepts (the
 * auxiliary head, which an exported model has not). Throws, naming each weight without a match.
 * Returns the number of weights copied.
 */
export function copyWeightsByName(from: tfl.LayersModel, to: tfl.LayersModel, leftOut: (layerName: string) => boolean): number {
  const sources = new Map<string, tfl.LayerVariable>();
  for (const layer of from.layers) for (const weight of layer.weights) sources.set(weightKey(layer, weight), weight);
  const problems: string[] = [];
  const used = new Set<string>();
  const assignments: { layer: tfl.layers.Layer; values: tfl.LayerVariable[] }[] = [];
  for (const layer of to.layers) {
    if (layer.weights.length === 0) continue;
    const values: tfl.LayerVariable[] = [];
    for (const weight of layer.weights) {
      const key = weightKey(layer, weight);
      const source = sources.get(key);
      if (!source) problems.push(`${key} is not in the source model`);
      else if (source.shape.join('x') !== weight.shape.join('x')) problems.push(`${key} is ${source.shape.join('x')} in the source model, ${weight.shape.join('x')} in the target`);
      else values.push(source);
      used.add(key);
    }
    assignments.push({ layer, values });
  }
  for (const layer of from.layers) {
    if (leftOut(layer.name)) continue;
    for (const weight of layer.weights) if (!used.has(weightKey(layer, weight))) problems.push(`${weightKey(layer, weight)} is not in the target model`);
  }
  if (problems.length > 0) throw new Error(`cannot copy the weights of ${from.name} into ${to.name}, which is not the same network: ${problems.join('; ')}`);
  let copied = 0;
  for (const { layer, values } of assignments) {
    // The variables share the values' data, counted by reference: disposing `from` leaves `to` whole.
    layer.setWeights(values.map((value) => value.read()));
    copied += values.length;
  }
  return copied;
}
