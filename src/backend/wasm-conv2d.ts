// wasm's forward Conv2D, with two shortcuts before the package's kernel (XNNPACK's convolution):
//
//   1x1, stride 1: y [N*H*W, Co] = x [N*H*W, Ci] W [Ci, Co], on XNNPACK's fully-connected operator
//                  (KernelScope.matMul). The weights change at every training step, and the
//                  package's Conv2D copies them transposed into a fresh buffer before XNNPACK packs
//                  them; the fully-connected operator packs them as they are. Inception-V3's 1x1
//                  convolutions on small maps: 8x3x3x2048 -> 320 13.6 against 4.6 ms, 8x7x7x768 ->
//                  192 5.7 against 3.2; the same on large maps.
//   maps with fewer positions (N*OH*OW) than output channels: columns x W, the filter as it is
//                  stored (conv-columns.ts), where its transposed copy costs more than the columns
//   other filters: without the taps that only ever see padding (conv-taps.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { columnConv2D } from './conv-columns.js';
import { tapTrim, trimmedInfo } from './conv-taps.js';
import { KernelScope, replaceWasmKernel } from './kernel-scope.js';

let packagedConv2D: KernelConfig['kernelFunc'] | undefined;

function conv2D(args: { inputs: NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: NamedAttrMap }): TensorInfo {
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, dataFormat } = args.attrs as unknown as tf.Conv2DAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    strides, dilations, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
  if (info.dataFormat !== 'channelsLast' || x.dtype !== 'float32') return packagedConv2D!(args as never) as TensorInfo;
  const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo, inChannels, outChannels } = info;
  const pointwise = filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 &&
    padInfo.top === 0 && padInfo.bottom === 0 && padInfo.left === 0 && padInfo.right === 0;
  if (pointwise) {
    const scope = new KernelScope(args.backend);
    const positions = info.batchSize * info.inHeight * info.inWidth;
    return scope.finish(scope.run('Reshape', { x: scope.matMul(x, filter, positions, inChannels, outChannels) }, { shape: info.outShape }));
  }
  const trim = tapTrim(info);
  const smallMap = info.batchSize * info.outHeight * info.outWidth < outChannels && info.dilationHeight === 1 && info.dilationWidth === 1;
  if (!trim && !smallMap) return packagedConv2D!(args as never) as TensorInfo;
  const scope = new KernelScope(args.backend);
  const used = trim ? scope.run(tf.Slice, { x: filter }, { begin: trim.begin, size: trim.size }) : filter;
  if (smallMap) return scope.finish(columnConv2D(scope, x, used, trim ? trimmedInfo(info, trim) : info));
  const output = packagedConv2D!({ ...args, inputs: { x, filter: used }, attrs: { ...args.attrs, pad: trim!.pad, dilations: [1, 1] } } as never) as TensorInfo;
  return scope.finish(output);
}

/** Registers (or replaces) wasm's Conv2D with the above, which calls the package's. Idempotent. */
export function registerWasmConv2D(): void {
  packagedConv2D = replaceWasmKernel(tf.Conv2D, conv2D as unknown as KernelConfig['kernelFunc']) ?? packagedConv2D;
}
