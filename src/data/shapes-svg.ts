// The classes of the generated "shapes" dataset and how one image of each is drawn, as SVG.
//
// They are chosen to stay apart after Inception's training crop (5-100% of the area, aspect
// 3/4-4/3, a horizontal flip, resized to as little as 75x75): the objects span 40-85% of the
// image's side, so most crops hold a good part of one; the textures cover the whole image, so
// every crop shows them. Every class is its own mirror image, so a flip never turns one class
// into another; rotations stay small where a large one could (a square or a cross at 45 degrees,
// stripes at 90), and are free where they cannot (a star, dots on a grid).
//
// Colour carries no class information: the two colours of an image are drawn the same way for
// every class, from one distribution that is symmetric in foreground and background, so each
// class's mean colour is the same. A gradient on the background and the varying line widths
// and sizes are the nuisance a model must see past; the pixel noise is added after rendering
// (shapes.ts).

import { randomUniform, type Random } from './random.js';

export const SHAPE_CLASSES = [
  'circle',
  'square',
  'triangle',
  'cross',
  'ring',
  'star',
  'horizontal-stripes',
  'vertical-stripes',
  'checkerboard',
  'dots',
] as const;

export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** The classes that cover the whole image; the others are one object on a background. */
const TEXTURES: ReadonlySet<ShapeClass> = new Set(['horizontal-stripes', 'vertical-stripes', 'checkerboard', 'dots']);

export type Rgb = readonly [number, number, number];

/** Smallest difference of luma (Rec. 601, 0..255) between foreground and background. */
export const MIN_LUMA_CONTRAST = 64;
/** An object's extent, as a fraction of the image's side. */
export const OBJECT_EXTENT: readonly [number, number] = [0.4, 0.85];
/** How far the background's far end may drift from its near end, per channel (so its luma too). */
const GRADIENT_DRIFT = 40;

export function luma([r, g, b]: Rgb): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

/** One SVG document of `size` x `size` pixels showing an instance of `shape`. */
export function drawShapeSvg(shape: ShapeClass, random: Random, size: number): string {
  const { background, backgroundFar, foreground } = sampleColours(random);
  const angle = randomUniform(random, 0, 2 * Math.PI);
  const [x1, y1, x2, y2] = [0.5 - Math.cos(angle) / 2, 0.5 - Math.sin(angle) / 2, 0.5 + Math.cos(angle) / 2, 0.5 + Math.sin(angle) / 2].map((v) => n(v * size));
  const body = TEXTURES.has(shape) ? drawTexture(shape, random, size, hex(foreground)) : drawObject(shape, random, size);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<defs><linearGradient id="bg" gradientUnits="userSpaceOnUse" x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}">` +
    `<stop offset="0" stop-color="${hex(background)}"/><stop offset="1" stop-color="${hex(backgroundFar)}"/></linearGradient>${body.defs ?? ''}</defs>` +
    `<rect width="${size}" height="${size}" fill="url(#bg)"/>` +
    `<g fill="${hex(foreground)}" stroke="${hex(foreground)}" stroke-width="0">${body.shapes}</g></svg>`
  );
}

export interface Colours {
  /** The background's gradient runs from `background` to `backgroundFar`. */
  background: Rgb;
  backgroundFar: Rgb;
  foreground: Rgb;
}

/**
 * Colours uniform in RGB, the background's far end drifted from its near end, all redrawn until
 * both ends differ from the foreground by MIN_LUMA_CONTRAST in luma (luma is linear along the
 * gradient, and the drift too small for the ends to lie on both sides, so the whole background
 * does). The rule is the same under v -> 255 - v, so every colour's mean is mid-grey whatever the
 * class, and a class that shows more foreground than another has no different mean colour for it.
 */
export function sampleColours(random: Random): Colours {
  for (;;) {
    const background = sampleRgb(random);
    const foreground = sampleRgb(random);
    const backgroundFar = background.map((v) => clamp(v + randomUniform(random, -GRADIENT_DRIFT, GRADIENT_DRIFT))) as unknown as Rgb;
    const contrast = Math.min(Math.abs(luma(background) - luma(foreground)), Math.abs(luma(backgroundFar) - luma(foreground)));
    if (contrast >= MIN_LUMA_CONTRAST) return { background, backgroundFar, foreground };
  }
}

interface Body {
  defs?: string;
  shapes: string;
}

function drawObject(shape: ShapeClass, random: Random, size: number): Body {
  const radius = (randomUniform(random, OBJECT_EXTENT[0], OBJECT_EXTENT[1]) * size) / 2;
  // The object's bounding circle stays inside the image.
  const cx = randomUniform(random, radius, size - radius);
  const cy = randomUniform(random, radius, size - radius);
  const rotate = (degrees: number) => `transform="rotate(${n(degrees)} ${n(cx)} ${n(cy)})"`;
  switch (shape) {
    case 'circle':
      return { shapes: `<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(radius)}"/>` };
    case 'ring': {
      const width = radius * randomUniform(random, 0.15, 0.35);
      return { shapes: `<circle cx="${n(cx)}" cy="${n(cy)}" r="${n(radius - width / 2)}" fill="none" stroke-width="${n(width)}"/>` };
    }
    case 'square': {
      // Half the side; within 15 degrees of upright the corners stay inside the image.
      const half = radius * 0.8;
      return { shapes: `<rect x="${n(cx - half)}" y="${n(cy - half)}" width="${n(2 * half)}" height="${n(2 * half)}" ${rotate(randomUniform(random, -15, 15))}/>` };
    }
    case 'triangle':
      return { shapes: `<polygon points="${polygon(cx, cy, [radius, radius, radius])}" ${rotate(randomUniform(random, -20, 20))}/>` };
    case 'cross': {
      const arm = radius * 0.95;
      const half = radius * randomUniform(random, 0.16, 0.3);
      const d = `M${n(cx - half)} ${n(cy - arm)}h${n(2 * half)}v${n(arm - half)}h${n(arm - half)}v${n(2 * half)}h${n(half - arm)}v${n(arm - half)}` +
        `h${n(-2 * half)}v${n(half - arm)}h${n(half - arm)}v${n(-2 * half)}h${n(arm - half)}z`;
      return { shapes: `<path d="${d}" ${rotate(randomUniform(random, -15, 15))}/>` };
    }
    case 'star': {
      const inner = radius * randomUniform(random, 0.38, 0.5);
      return { shapes: `<polygon points="${polygon(cx, cy, [radius, inner, radius, inner, radius, inner, radius, inner, radius, inner])}" ${rotate(randomUniform(random, 0, 72))}/>` };
    }
    default:
      throw new Error(`${shape} is not an object class`);
  }
}

/** A regular polygon's vertices at the given radii, the first straight up from (cx, cy). */
function polygon(cx: number, cy: number, radii: readonly number[]): string {
  return radii
    .map((r, i) => {
      const a = (2 * Math.PI * i) / radii.length;
      return `${n(cx + r * Math.sin(a))},${n(cy - r * Math.cos(a))}`;
    })
    .join(' ');
}

function drawTexture(shape: ShapeClass, random: Random, size: number, colour: string): Body {
  // Tiles repeat from a random phase, tilted a little about the centre; the pattern covers the
  // whole image at any tilt because it fills a square three times the image's side. A pattern's
  // content inherits from the pattern element, not from what it fills, hence its own fill.
  const tilt = (degrees: number, dx: number, dy: number) =>
    `fill="${colour}" patternTransform="rotate(${n(degrees)} ${n(size / 2)} ${n(size / 2)}) translate(${n(dx)} ${n(dy)})"`;
  const fillAll = `<rect x="${-size}" y="${-size}" width="${3 * size}" height="${3 * size}" fill="url(#tile)"/>`;
  switch (shape) {
    case 'horizontal-stripes':
    case 'vertical-stripes': {
      const period = size * randomUniform(random, 0.08, 0.2);
      const band = period * randomUniform(random, 0.35, 0.65);
      const degrees = randomUniform(random, -8, 8) + (shape === 'vertical-stripes' ? 90 : 0);
      const tile = `<pattern id="tile" patternUnits="userSpaceOnUse" width="${n(period)}" height="${n(period)}" ${tilt(degrees, 0, random() * period)}>` +
        `<rect width="${n(period)}" height="${n(band)}"/></pattern>`;
      return { defs: tile, shapes: fillAll };
    }
    case 'checkerboard': {
      const cell = size * randomUniform(random, 0.08, 0.18);
      const tile = `<pattern id="tile" patternUnits="userSpaceOnUse" width="${n(2 * cell)}" height="${n(2 * cell)}" ${tilt(randomUniform(random, -8, 8), random() * 2 * cell, random() * 2 * cell)}>` +
        `<rect width="${n(cell)}" height="${n(cell)}"/><rect x="${n(cell)}" y="${n(cell)}" width="${n(cell)}" height="${n(cell)}"/></pattern>`;
      return { defs: tile, shapes: fillAll };
    }
    case 'dots': {
      const spacing = size * randomUniform(random, 0.1, 0.2);
      const r = spacing * randomUniform(random, 0.2, 0.35);
      const tile = `<pattern id="tile" patternUnits="userSpaceOnUse" width="${n(spacing)}" height="${n(spacing)}" ${tilt(randomUniform(random, 0, 90), random() * spacing, random() * spacing)}>` +
        `<circle cx="${n(spacing / 2)}" cy="${n(spacing / 2)}" r="${n(r)}"/></pattern>`;
      return { defs: tile, shapes: fillAll };
    }
    default:
      throw new Error(`${shape} is not a texture class`);
  }
}

function sampleRgb(random: Random): Rgb {
  return [Math.floor(random() * 256), Math.floor(random() * 256), Math.floor(random() * 256)];
}

function clamp(v: number): number {
  return Math.min(255, Math.max(0, Math.round(v)));
}

function hex(rgb: Rgb): string {
  return `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** Two decimals: short documents, and the same text for the same draw everywhere. */
function n(v: number): string {
  return v.toFixed(2);
}
