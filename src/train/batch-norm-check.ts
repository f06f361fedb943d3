// Batch norm normalises each channel over the batch and the map's positions. Inception-V3's last
// blocks (mixed9, mixed10) run on maps 1/37 of the input's side, down to 1x1 at 75x75, so a
// small per-worker batch leaves their statistics a handful of values: noisy in training, and far
// from the moving averages that evaluation uses. This finds that case before the first step.

/** Values per channel below which the statistics are too noisy to warn about (a batch of 32 on 1x1 maps). */
export const MIN_NORMALIZED_VALUES = 32;

/** The side of mixed9 and mixed10's maps for an input of `imageSize` (8 at 299, 3 at 139, 1 at 75). */
export function lastMapSize(imageSize: number): number {
  const validStride2 = (size: number) => Math.floor((size - 3) / 2) + 1;
  let size = validStride2(imageSize); // conv2d_1, 3x3 stride 2
  size -= 2; // conv2d_2, 3x3 valid
  size = validStride2(size); // max_pooling2d_1
  size -= 2; // conv2d_5, 3x3 valid
  size = validStride2(size); // max_pooling2d_2
  size = validStride2(size); // mixed3
  return validStride2(size); // mixed8
}

/** A warning line, or undefined when every batch norm sees at least MIN_NORMALIZED_VALUES values per channel. */
export function batchNormWarning(batchSize: number, imageSize: number): string | undefined {
  const side = lastMapSize(imageSize);
  const values = batchSize * side * side;
  if (values >= MIN_NORMALIZED_VALUES) return undefined;
  let betterSize = imageSize;
  while (batchSize * lastMapSize(betterSize) ** 2 < MIN_NORMALIZED_VALUES) betterSize++;
  const batch = Math.ceil(MIN_NORMALIZED_VALUES / (side * side));
  return `warning: batch norm in mixed9 and mixed10 normalises over ${values} values per channel (batch ${batchSize} per worker x ${side}x${side} maps ` +
    `at ${imageSize}x${imageSize}): its statistics are noisy, and evaluation, which uses their moving averages, suffers; ` +
    `use --image-size ${betterSize} (${lastMapSize(betterSize)}x${lastMapSize(betterSize)} maps) or --batch-size ${batch} or more`;
}
