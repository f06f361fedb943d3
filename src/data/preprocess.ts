// Inception preprocessing (tensorflow/models research/slim/preprocessing/inception_preprocessing.py),
// without the colour distortion: for training a random crop covering 5-100% of the image's area
// with aspect ratio 3/4-4/3 and a random horizontal flip; for evaluation the central 87.5% (of
// each side, as tf.image.central_crop); then a resize to size x size and RGB scaled to [-1, 1].
// Where the crop falls is a pure function of a seeded generator and the image's dimensions, so it
// is tested apart from the decoding.

import sharp from 'sharp';
import { randomInt, randomUniform, type Random } from './random.js';

export const MIN_AREA = 0.05;
export const MAX_AREA = 1;
export const MIN_ASPECT = 3 / 4;
export const MAX_ASPECT = 4 / 3;
export const EVAL_CENTRAL_FRACTION = 0.875;
/** As inception_preprocessing.py's distorted_bounding_box_crop(max_attempts=100). */
const CROP_ATTEMPTS = 100;

export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface Augmentation {
  crop: CropBox;
  /** Mirror left to right. */
  flip: boolean;
}

/**
 * A box of MIN_AREA..MAX_AREA of the image with aspect MIN_ASPECT..MAX_ASPECT, at a random place.
 * Draws whose box, after rounding to whole pixels, leaves those ranges or the image are redrawn;
 * when every attempt fails (images narrower than 3:4 or wider than 4:3 drawn unluckily), the
 * central box of the nearest allowed aspect spanning the image's short side is used, as
 * torchvision's RandomResizedCrop does, rather than the whole image.
 */
export function sampleTrainCrop(random: Random, width: number, height: number): CropBox {
  const area = width * height;
  for (let attempt = 0; attempt < CROP_ATTEMPTS; attempt++) {
    const targetArea = area * randomUniform(random, MIN_AREA, MAX_AREA);
    const aspect = Math.exp(randomUniform(random, Math.log(MIN_ASPECT), Math.log(MAX_ASPECT)));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w < 1 || h < 1 || w > width || h > height) continue;
    const fraction = (w * h) / area;
    if (fraction < MIN_AREA || fraction > MAX_AREA || w / h < MIN_ASPECT || w / h > MAX_ASPECT) continue;
    return { left: randomInt(random, width - w + 1), top: randomInt(random, height - h + 1), width: w, height: h };
  }
  return fallbackCrop(width, height);
}

function fallbackCrop(width: number, height: number): CropBox {
  let w = width;
  let h = height;
  if (width / height < MIN_ASPECT) h = Math.max(1, Math.round(width / MIN_ASPECT));
  else if (width / height > MAX_ASPECT) w = Math.max(1, Math.round(height * MAX_ASPECT));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** The training crop, then the flip, both from `random`. */
export function sampleTrainAugmentation(random: Random, width: number, height: number): Augmentation {
  const crop = sampleTrainCrop(random, width, height);
  return { crop, flip: random() < 0.5 };
}

/** tf.image.central_crop: the same whole-pixel margin on both sides of each axis. */
export function centralCrop(width: number, height: number, fraction = EVAL_CENTRAL_FRACTION): CropBox {
  const left = Math.trunc((width - width * fraction) / 2);
  const top = Math.trunc((height - height * fraction) / 2);
  return { left, top, width: width - 2 * left, height: height - 2 * top };
}

/** uint8 v -> v / 127.5 - 1, i.e. [0, 255] -> [-1, 1], as Inception's (x / 255 - 0.5) * 2. */
const TO_FLOAT = Float32Array.from({ length: 256 }, (_, v) => v / 127.5 - 1);

/**
 * Decodes an encoded image (JPEG, or PNG: some ImageNet "JPEG"s are PNG or CMYK), crops it as
 * `plan` says for its dimensions, resizes to imageSize x imageSize with a linear (triangle)
 * kernel, and writes RGB floats to output[offset...]. EXIF orientation is ignored, as TensorFlow's
 * decode_jpeg ignores it. A truncated or corrupt image throws (failOn 'error'); JPEGs with mere
 * warnings, such as extraneous bytes before a marker, decode as TensorFlow decodes them.
 */
export async function decodeImage(
  encoded: Uint8Array,
  plan: (width: number, height: number) => Augmentation,
  imageSize: number,
  output: Float32Array,
  offset: number,
): Promise<void> {
  const image = sharp(encoded, { failOn: 'error' });
  const { width, height } = await image.metadata();
  if (!width || !height) throw new Error('the image has no dimensions');
  const { crop, flip } = plan(width, height);
  image.extract(crop).resize(imageSize, imageSize, { fit: 'fill', kernel: 'linear' });
  if (flip) image.flop();
  const { data, info } = await image.toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const values = imageSize * imageSize * 3;
  if (info.channels !== 3 || data.length !== values) {
    throw new Error(`decoding gave ${info.width}x${info.height}x${info.channels}, not ${imageSize}x${imageSize}x3`);
  }
  for (let i = 0; i < values; i++) output[offset + i] = TO_FLOAT[data[i]!]!;
}
